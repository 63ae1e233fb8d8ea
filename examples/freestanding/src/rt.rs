//! What libc and std would otherwise provide: the entry point `_start`, a
//! panic handler, and the memory functions the compiler calls.

use rawipc::process;

use crate::Line;

/// The process starts here, with no libc to set anything up; it needs nothing
/// set up (no arguments, no environment, no thread-local storage).
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        // The outermost frame, for debuggers and backtraces.
        "xor ebp, ebp",
        // The kernel leaves the stack 16-byte aligned; `call` then leaves it
        // as the ABI promises a function at entry.
        "and rsp, -16",
        "call {start}",
        "ud2",
        start = sym start,
    )
}

/// The process starts here, with no libc to set anything up.
#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "mov x29, xzr",
        "mov x30, xzr",
        "bl {start}",
        "brk #1",
        start = sym start,
    )
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("this example has an entry point for x86_64 and aarch64 only");

extern "C" fn start() -> ! {
    process::exit(crate::main())
}

/// Prints where the panic happened (no message: formatting it would bring in
/// `core::fmt`) and exits with 101, as a std program would.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut line = Line::new();
    line.str("panicked");
    if let Some(location) = info.location() {
        line.str(" at ")
            .str(location.file())
            .str(":")
            .num(location.line().into());
    }
    line.print();
    process::exit(101)
}

/// The personality routine that the precompiled `core` (built to unwind)
/// names in its unwinding tables. Nothing unwinds here (`panic = "abort"`), so
/// it is never called; a release build drops those tables, but a debug build
/// does not link without the symbol.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() -> ! {
    process::exit(101)
}

// The memory functions. Each is a byte loop through volatile accesses: the
// optimiser may turn a plain copy loop into a call to `memcpy`, which here
// would be a call to itself.

/// # Safety
/// `dst` and `src` valid for `n` bytes, not overlapping.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; a forward copy is right without overlap.
    unsafe { copy_forward(dst, src, n) };
    dst
}

/// # Safety
/// `dst` and `src` valid for `n` bytes; they may overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if dst.cast_const() <= src {
        // SAFETY: the caller's contract; copying upwards never overwrites a
        // source byte before it is read when dst is below src.
        unsafe { copy_forward(dst, src, n) };
    } else {
        let mut i = n;
        while i > 0 {
            i -= 1;
            // SAFETY: i < n, so both addresses are in the caller's ranges.
            unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
        }
    }
    dst
}

/// # Safety
/// `dst` and `src` valid for `n` bytes; `dst` not above `src` if they overlap.
unsafe fn copy_forward(dst: *mut u8, src: *const u8, n: usize) {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n, so both addresses are in the caller's ranges.
        unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
        i += 1;
    }
}

/// # Safety
/// `dst` valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n, in the caller's range; memset stores `c` as a byte.
        unsafe { dst.add(i).write_volatile(c as u8) };
        i += 1;
    }
    dst
}

/// # Safety
/// `a` and `b` valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n, so both addresses are in the caller's ranges.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// # Safety
/// `a` and `b` valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the caller's contract, which is memcmp's.
    unsafe { memcmp(a, b, n) }
}

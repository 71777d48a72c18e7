//! The io_uring backend: the same data file, read and written through a
//! ring per thread (the commit thread for writes, each reader for its reads),
//! with every IO of one call in flight at once.
//!
//! The kernel holds raw pointers into our buffers while an operation is in
//! flight, which is why submission is `unsafe`. The invariant that makes it
//! sound: a call pushes operations only on buffers it borrows for its whole
//! duration, and does not return (not even on error) before it has reaped
//! the completion of every operation it submitted.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use io_uring::{IoUring, opcode, types};

use super::{AlignedBuf, BlockDevice, FileDevice};

/// Ring size per thread: how many operations one call keeps in flight.
const DEPTH: u32 = 64;

thread_local! {
    static RING: RefCell<Option<IoUring>> = const { RefCell::new(None) };
}

/// Whether this kernel lets us create a ring at all.
pub fn available() -> bool {
    IoUring::new(2).is_ok()
}

/// The data device accessed through io_uring.
pub struct UringDevice {
    inner: FileDevice,
}

/// One IO: a buffer range and its device offset.
struct Io {
    ptr: usize,
    len: usize,
    offset: u64,
    write: bool,
}

impl UringDevice {
    /// Wraps an opened device; fails when io_uring is unavailable.
    pub fn new(inner: FileDevice) -> io::Result<Self> {
        IoUring::new(2)?;
        Ok(UringDevice { inner })
    }

    /// Runs `ios` on this thread's ring, DEPTH at a time; short transfers
    /// are finished with positional IO.
    fn run(&self, ios: &[Io]) -> io::Result<()> {
        RING.with(|cell| -> io::Result<()> {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(IoUring::new(DEPTH)?);
            }
            let Some(ring) = slot.as_mut() else {
                return Err(io::Error::other("no ring"));
            };
            let fd = types::Fd(self.file().as_raw_fd());
            let mut first_err = None;
            for batch in ios.chunks(DEPTH as usize) {
                let mut submitted = 0usize;
                for (i, io) in batch.iter().enumerate() {
                    let len =
                        u32::try_from(io.len).map_err(|_| io::Error::other("IO too large"))?;
                    let entry = if io.write {
                        opcode::Write::new(fd, io.ptr as *const u8, len)
                            .offset(io.offset)
                            .build()
                    } else {
                        opcode::Read::new(fd, io.ptr as *mut u8, len)
                            .offset(io.offset)
                            .build()
                    }
                    .user_data(i as u64);
                    // SAFETY: the buffer behind `io.ptr` is borrowed by our
                    // caller for this whole call, and the loop below reaps
                    // every submitted operation before returning.
                    if unsafe { ring.submission().push(&entry) }.is_err() {
                        break;
                    }
                    submitted += 1;
                }
                let mut done = 0usize;
                let mut results = vec![0i32; submitted];
                let mut failures = 0u32;
                while done < submitted {
                    if let Err(e) = ring.submit_and_wait(submitted - done) {
                        if e.kind() != io::ErrorKind::Interrupted {
                            failures += 1;
                            first_err.get_or_insert(e);
                        }
                        if failures > 10_000 {
                            // Operations may still be in flight on buffers we
                            // would hand back: neither returning nor unwinding
                            // is sound, so stop the process.
                            tracing::error!(
                                "io_uring keeps failing with operations in flight; aborting"
                            );
                            std::process::abort();
                        }
                        continue;
                    }
                    for cqe in ring.completion() {
                        if let Some(r) = results.get_mut(cqe.user_data() as usize) {
                            *r = cqe.result();
                        }
                        done += 1;
                    }
                }
                if submitted < batch.len() {
                    first_err.get_or_insert(io::Error::other("submission queue full"));
                }
                for (io, &res) in batch.iter().zip(&results) {
                    if res < 0 {
                        first_err.get_or_insert(io::Error::from_raw_os_error(-res));
                    } else if (res as usize) < io.len {
                        // Finish a short transfer the ordinary way.
                        let n = res as usize;
                        let r = if io.write {
                            self.finish_write(io, n)
                        } else {
                            self.finish_read(io, n)
                        };
                        if let Err(e) = r {
                            first_err.get_or_insert(e);
                        }
                    }
                }
            }
            first_err.map_or(Ok(()), Err)
        })
    }

    fn file(&self) -> &File {
        self.inner.file()
    }

    fn finish_write(&self, io: &Io, n: usize) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        // SAFETY: (ptr, len) is the caller's borrowed buffer (see `run`); no
        // kernel operation is using it any more.
        let rest = unsafe { std::slice::from_raw_parts((io.ptr as *const u8).add(n), io.len - n) };
        self.file().write_all_at(rest, io.offset + n as u64)
    }

    fn finish_read(&self, io: &Io, n: usize) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        // SAFETY: as in `finish_write`; the caller lent this buffer mutably.
        let rest =
            unsafe { std::slice::from_raw_parts_mut((io.ptr as *mut u8).add(n), io.len - n) };
        self.file().read_exact_at(rest, io.offset + n as u64)
    }
}

impl BlockDevice for UringDevice {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_at(&self, buf: &mut AlignedBuf, offset: u64) -> io::Result<()> {
        let len = buf.len();
        let io = Io {
            ptr: buf.as_mut_slice().as_mut_ptr() as usize,
            len,
            offset,
            write: false,
        };
        self.run(std::slice::from_ref(&io))
    }

    fn read_many(&self, reads: &mut [(u64, AlignedBuf)]) -> io::Result<()> {
        let ios: Vec<Io> = reads
            .iter_mut()
            .map(|(off, buf)| Io {
                len: buf.len(),
                ptr: buf.as_mut_slice().as_mut_ptr() as usize,
                offset: *off,
                write: false,
            })
            .collect();
        self.run(&ios)
    }

    fn write_all(&self, writes: &[(u64, AlignedBuf)]) -> io::Result<()> {
        let ios: Vec<Io> = writes
            .iter()
            .map(|(off, buf)| Io {
                ptr: buf.as_slice().as_ptr() as usize,
                len: buf.len(),
                offset: *off,
                write: true,
            })
            .collect();
        self.run(&ios)
    }

    fn sync(&self) -> io::Result<()> {
        // io_uring would hand fsync to a kernel worker anyway (probes.md).
        self.inner.sync()
    }

    fn kind(&self) -> &'static str {
        "io_uring"
    }
}

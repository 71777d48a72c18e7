//! The thread-pool backend: positional reads and writes on the data file
//! (or block device) opened with `O_DIRECT`, writes of one batch spread over
//! a few threads so several are in flight.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Once;

use super::{AlignedBuf, BLOCK, BlockDevice};

/// Most writes of one batch issued at once.
const WRITE_THREADS: usize = 4;

/// A data file or block device accessed with positional IO.
pub struct FileDevice {
    file: File,
    size: u64,
    direct: bool,
}

static NO_DIRECT: Once = Once::new();

impl FileDevice {
    /// Creates (or overwrites) a data file of `size` bytes, allocated up
    /// front so writes never find the filesystem full.
    pub fn create(path: &Path, size: u64) -> io::Result<()> {
        if size < BLOCK || size % BLOCK != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("data size {size} must be a positive multiple of {BLOCK}"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, size) {
            Ok(()) => {}
            Err(rustix::io::Errno::OPNOTSUPP) => file.set_len(size)?,
            Err(e) => return Err(e.into()),
        }
        file.sync_all()
    }

    /// Opens an existing data file or block device.
    pub fn open(path: &Path) -> io::Result<Self> {
        let direct = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
            .open(path);
        let (file, direct) = match direct {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                NO_DIRECT.call_once(|| {
                    tracing::warn!(path = %path.display(), "filesystem refuses O_DIRECT; using buffered IO with fdatasync");
                });
                (OpenOptions::new().read(true).write(true).open(path)?, false)
            }
            Err(e) => return Err(e),
        };
        let size = device_size(&file)? / BLOCK * BLOCK;
        Ok(FileDevice { file, size, direct })
    }

    /// Whether direct IO is in use.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// Size of a regular file or block device.
fn device_size(file: &File) -> io::Result<u64> {
    let meta = file.metadata()?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    // A block device: its size is where seeking to the end lands.
    rustix::fs::seek(file, rustix::fs::SeekFrom::End(0)).map_err(io::Error::from)
}

impl BlockDevice for FileDevice {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, buf: &mut AlignedBuf, offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf.as_mut_slice(), offset)
    }

    fn write_all(&self, writes: &[(u64, AlignedBuf)]) -> io::Result<()> {
        if writes.len() <= 1 {
            for (off, buf) in writes {
                self.file.write_all_at(buf.as_slice(), *off)?;
            }
            return Ok(());
        }
        let per = writes.len().div_ceil(WRITE_THREADS);
        std::thread::scope(|s| {
            let handles: Vec<_> = writes
                .chunks(per)
                .map(|part| {
                    s.spawn(move || -> io::Result<()> {
                        for (off, buf) in part {
                            self.file.write_all_at(buf.as_slice(), *off)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| io::Error::other("a write thread panicked"))??;
            }
            Ok(())
        })
    }

    fn read_many(&self, reads: &mut [(u64, AlignedBuf)]) -> io::Result<()> {
        if reads.len() <= 1 {
            for (off, buf) in reads.iter_mut() {
                self.file.read_exact_at(buf.as_mut_slice(), *off)?;
            }
            return Ok(());
        }
        let per = reads.len().div_ceil(WRITE_THREADS);
        std::thread::scope(|s| {
            let handles: Vec<_> = reads
                .chunks_mut(per)
                .map(|part| {
                    s.spawn(move || -> io::Result<()> {
                        for (off, buf) in part.iter_mut() {
                            self.file.read_exact_at(buf.as_mut_slice(), *off)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| io::Error::other("a read thread panicked"))??;
            }
            Ok(())
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn kind(&self) -> &'static str {
        "thread-pool"
    }
}

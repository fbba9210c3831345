#ifndef BAM_SHIMS_H
#define BAM_SHIMS_H
/// Starts writeback of a file range without waiting (Linux sync_file_range with
/// SYNC_FILE_RANGE_WRITE); returns 0, or -1 where unsupported. Glibc declares sync_file_range only
/// under _GNU_SOURCE, which Swift's Glibc module does not define, hence this shim.
int bam_start_writeback(int fd, long long offset, long long count);
/// Atomically swaps two paths (Linux renameat2 with RENAME_EXCHANGE): after it, each name holds
/// what the other held, with no moment where either is missing. Returns 0, or -1 with errno set
/// (ENOSYS/EINVAL where the kernel or filesystem cannot), so callers fall back to two renames.
int bam_exchange_paths(const char *a, const char *b);
/// Installs handlers for SIGINT and SIGTERM that write the signal number (an int) to `fd` and do
/// nothing else (write is async-signal-safe); a thread reading the other end does the work. A
/// handler rather than a blocked signal and sigwait, because libraries start threads before main
/// (OpenBLAS's pool) whose masks would let the default action kill the process. Returns 0 or -1.
int bam_install_signal_pipe(int fd);
#endif

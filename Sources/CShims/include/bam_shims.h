#ifndef BAM_SHIMS_H
#define BAM_SHIMS_H
/// Starts writeback of a file range without waiting (Linux sync_file_range with
/// SYNC_FILE_RANGE_WRITE); returns 0, or -1 where unsupported. Glibc declares sync_file_range only
/// under _GNU_SOURCE, which Swift's Glibc module does not define, hence this shim.
int bam_start_writeback(int fd, long long offset, long long count);
#endif

#define _GNU_SOURCE
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <signal.h>
#include <string.h>
#include "bam_shims.h"

int bam_start_writeback(int fd, long long offset, long long count) {
#if defined(__linux__)
    return sync_file_range(fd, (off_t)offset, (off_t)count, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd; (void)offset; (void)count;
    return -1;
#endif
}

int bam_exchange_paths(const char *a, const char *b) {
#if defined(__linux__) && defined(SYS_renameat2)
    /* RENAME_EXCHANGE is 2 in linux/fs.h; called through syscall so older glibc headers suffice. */
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2);
#else
    (void)a; (void)b;
    errno = ENOSYS;
    return -1;
#endif
}

static volatile int bam_signal_fd = -1;

static void bam_signal_to_pipe(int sig) {
    int saved = errno;
    if (bam_signal_fd >= 0) { (void)!write(bam_signal_fd, &sig, sizeof sig); }
    errno = saved;
}

int bam_install_signal_pipe(int fd) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = bam_signal_to_pipe;
    sigemptyset(&action.sa_mask);
    bam_signal_fd = fd;
    if (sigaction(SIGINT, &action, NULL) != 0) return -1;
    if (sigaction(SIGTERM, &action, NULL) != 0) return -1;
    return 0;
}

// dmabench — CURing: an opaque wrapper around liburing (placeholder; the io_uring backend
// issue fills it in). Its public header must never include liburing.h (TOOLCHAIN.md trap 1).
#ifndef CURING_H
#define CURING_H
int curing_probe(void);
#endif

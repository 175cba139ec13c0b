/* cring_broken.h: the deliberately broken cring variant (broken.c); it exports dmabench_plugin. */
#ifndef CRING_BROKEN_H
#define CRING_BROKEN_H
#endif /* CRING_BROKEN_H */

/*
 * io-int.h: what conn.c and worker.c call of io.c (ferry/io.h's streams).
 */
#ifndef FERRY_IO_INT_H
#define FERRY_IO_INT_H

#include <stdint.h>

struct ferry_conn;
struct ferry_io;
struct worker;

void io_client_event(struct ferry_io *io, short what);  /* c's socket event, stream mode */
int  io_client_flush(struct ferry_conn *c);             /* 1: all out, 0: wait */
void io_conn_finish(struct ferry_conn *c);              /* close c's streams */
void io_conn_free(struct ferry_conn *c);
void io_bytes(const struct ferry_io *io, uint64_t *in, uint64_t *out);  /* socket totals */
void io_pool_close_all(struct worker *w);
/* Idle upstream streams go: opened under an older generation (its TLS contexts, key
 * stores and destinations), they are not reused after a reload. */
void io_pool_drop_idle(struct worker *w);
struct tunnel;
void io_pool_drop_tunnel(struct worker *w, struct tunnel *t);  /* its pooled streams go */
void io_worker_free(struct worker *w);                  /* pool and buffer cache */

#endif

#ifndef CLIBPQ_SHIM_H
#define CLIBPQ_SHIM_H
#include <libpq-fe.h>
/* The reactor that waits on libpq sockets (Postgres/PostgresReactor.swift) uses epoll, which
   Swift's Glibc module does not export. */
#include <sys/epoll.h>
#endif

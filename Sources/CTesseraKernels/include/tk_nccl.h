// NCCL's ncclCommInitRank takes its 128-byte ncclUniqueId by value, which a
// Swift @convention(c) function type cannot express; this calls it for Swift
// through a pointer looked up with dlsym (Distributed/NCCLBackend.swift).
#ifndef TK_NCCL_H
#define TK_NCCL_H

/// NCCL_UNIQUE_ID_BYTES in nccl.h.
#define TK_NCCL_UNIQUE_ID_BYTES 128

/// Calls `init_rank` (ncclCommInitRank) with the id's 128 bytes passed by
/// value; returns its ncclResult_t.
int tk_nccl_comm_init_rank(const void *init_rank, void **comm, int nranks, const void *unique_id, int rank);

#endif

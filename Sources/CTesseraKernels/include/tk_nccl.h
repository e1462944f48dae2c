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

/// Calls `init_rank_config` (ncclCommInitRankConfig, NCCL 2.14 and later)
/// with a config whose only set field is `blocking` (0: the call returns at
/// once and the caller polls ncclCommGetAsyncError, so a peer that never
/// arrives becomes a timeout instead of a hang). The config is NCCL 2.14's
/// ncclConfig_t layout with its size, magic and version filled in as
/// NCCL_CONFIG_INITIALIZER does; NCCL copies `size` bytes of it and takes its
/// defaults for the fields newer versions added.
int tk_nccl_comm_init_rank_config(
    const void *init_rank_config, void **comm, int nranks, const void *unique_id, int rank, int blocking);

/// The byte size of the config tk_nccl_comm_init_rank_config passes (for tests).
unsigned long tk_nccl_config_size(void);

#endif

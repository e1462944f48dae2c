// See include/tk_nccl.h: ncclCommInitRank's by-value ncclUniqueId, for Swift.
#include <limits.h>
#include <string.h>
#include "tk_nccl.h"

typedef struct { char internal[TK_NCCL_UNIQUE_ID_BYTES]; } tk_nccl_unique_id;
typedef int (*tk_nccl_init_rank_fn)(void **comm, int nranks, tk_nccl_unique_id id, int rank);

int tk_nccl_comm_init_rank(const void *init_rank, void **comm, int nranks, const void *unique_id, int rank) {
    tk_nccl_unique_id id;
    memcpy(id.internal, unique_id, TK_NCCL_UNIQUE_ID_BYTES);
    tk_nccl_init_rank_fn fn;
    memcpy(&fn, &init_rank, sizeof fn);
    return fn(comm, nranks, id, rank);
}

/// ncclConfig_t as NCCL 2.14 declared it (nccl.h): later versions append fields.
typedef struct {
    size_t size;
    unsigned int magic;    /* 0xcafebeef */
    unsigned int version;  /* NCCL_VERSION(2, 14, 0) */
    int blocking;
    int cgaClusterSize;
    int minCTAs;
    int maxCTAs;
    const char *netName;
} tk_nccl_config;

typedef int (*tk_nccl_init_rank_config_fn)(void **comm, int nranks, tk_nccl_unique_id id, int rank, tk_nccl_config *config);

unsigned long tk_nccl_config_size(void) { return (unsigned long)sizeof(tk_nccl_config); }

int tk_nccl_comm_init_rank_config(
    const void *init_rank_config, void **comm, int nranks, const void *unique_id, int rank, int blocking) {
    tk_nccl_unique_id id;
    memcpy(id.internal, unique_id, TK_NCCL_UNIQUE_ID_BYTES);
    /* NCCL_CONFIG_UNDEF_INT is INT_MIN, NCCL_CONFIG_UNDEF_PTR is NULL: NCCL's defaults. */
    tk_nccl_config config = {sizeof(tk_nccl_config), 0xcafebeefu, 21400u, blocking, INT_MIN, INT_MIN, INT_MIN, NULL};
    tk_nccl_init_rank_config_fn fn;
    memcpy(&fn, &init_rank_config, sizeof fn);
    return fn(comm, nranks, id, rank, &config);
}

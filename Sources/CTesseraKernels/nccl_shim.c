// See include/tk_nccl.h: ncclCommInitRank's by-value ncclUniqueId, for Swift.
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

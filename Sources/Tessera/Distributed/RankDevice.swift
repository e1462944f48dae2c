// Which GPU a rank takes, and waiting on NCCL without hanging.
//
// Ranks on one host each take their own GPU (NCCL refuses two ranks on one
// device): the CUDA backend opens device `RankDevice.ordinal` rather than 0,
// chosen before any communicator exists (the driver API's equivalent of
// cudaSetDevice: that device's primary context, made current). The local rank
// comes from `tessera launch` (TESSERA_LOCAL_RANK / TESSERA_LOCAL_WORLD_SIZE)
// or Open MPI's mpirun (OMPI_COMM_WORLD_LOCAL_RANK / _SIZE); TESSERA_CUDA_DEVICE
// overrides it, and CUDA_VISIBLE_DEVICES narrows what the driver shows first.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

package enum RankDevice {
    /// An explicit device ordinal for this process (among the visible devices).
    package static let deviceVariable = "TESSERA_CUDA_DEVICE"
    /// This rank's index among the ranks on its host (set by `tessera launch`).
    package static let localRankVariable = "TESSERA_LOCAL_RANK"
    /// The number of ranks on this rank's host (set by `tessera launch`).
    package static let localSizeVariable = "TESSERA_LOCAL_WORLD_SIZE"

    /// This process's position on its host: (local rank, local size), or nil
    /// when it was not started as one of several ranks.
    package static func local(_ environment: [String: String]) throws -> (rank: Int, size: Int?)? {
        for (rankName, sizeName) in [
            (localRankVariable, localSizeVariable),
            ("OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE")
        ] {
            guard let text = environment[rankName] else { continue }
            guard let rank = Int(text), rank >= 0 else {
                throw DistributedError.badConfiguration("\(rankName) must be a rank (0, 1, ...), got '\(text)'")
            }
            guard let sizeText = environment[sizeName] else { return (rank, nil) }
            guard let size = Int(sizeText), size > rank else {
                throw DistributedError.badConfiguration("\(sizeName)=\(sizeText) must exceed \(rankName)=\(rank)")
            }
            return (rank, size)
        }
        return nil
    }

    /// The device ordinal this process uses, of `deviceCount` visible ones:
    /// TESSERA_CUDA_DEVICE, else the local rank modulo the count, else 0.
    package static func ordinal(environment: [String: String], deviceCount: Int) throws -> Int {
        guard deviceCount > 0 else {
            throw DistributedError.backendUnavailable(backend: "cuda", reason: "no CUDA device")
        }
        if let text = environment[deviceVariable] {
            guard let device = Int(text), device >= 0 else {
                throw DistributedError.badConfiguration("\(deviceVariable) must be a device number, got '\(text)'")
            }
            guard device < deviceCount else {
                throw DistributedError.badConfiguration(
                    "\(deviceVariable)=\(device) but \(deviceCount) CUDA device(s) are visible")
            }
            return device
        }
        guard let local = try local(environment) else { return 0 }
        return local.rank % deviceCount
    }

    /// NCCL needs a GPU of its own per rank: throws when this host has more
    /// ranks than visible devices, or when an explicit device is shared.
    package static func checkOneDevicePerRank(environment: [String: String], deviceCount: Int) throws {
        guard let local = try local(environment), let size = local.size else { return }
        if environment[deviceVariable] == nil, size > deviceCount {
            throw DistributedError.badConfiguration(
                "\(size) ranks on this host but \(deviceCount) visible CUDA device(s): NCCL needs one GPU per rank "
                    + "(run at most \(deviceCount) ranks per host, or set CUDA_VISIBLE_DEVICES per rank)")
        }
    }
}

/// Polling NCCL's progress with a deadline: NCCL's own calls can wait forever
/// for a peer that never comes, so the backend makes its communicators
/// non-blocking and waits here, where a timeout aborts the communicator and
/// ends the rank with `timedOut` (the contract of the ring and MPI backends).
package enum NCCLProgress {
    /// ncclInProgress.
    package static let inProgress: Int32 = 7

    package enum State: Equatable {
        case done
        case pending
        case failed(String)
    }

    /// Polls `state` until done; on failure or past `timeout` seconds calls
    /// `abort` once and throws (`backendError` or `timedOut`).
    package static func wait(
        operation: String, timeout: Double, state: () -> State, abort: () -> Void
    ) throws {
        let deadline = monotonicSeconds() + timeout
        var polls = 0
        while true {
            switch state() {
            case .done: return
            case .failed(let reason):
                abort()
                throw DistributedError.backendError("\(operation): \(reason)")
            case .pending:
                if monotonicSeconds() > deadline {
                    abort()
                    throw DistributedError.timedOut(operation: operation, seconds: timeout)
                }
                polls += 1
                // Spin briefly (a collective is often done within microseconds), then sleep between looks.
                if polls > 100 { usleep(200) } else { sched_yield() }
            }
        }
    }
}

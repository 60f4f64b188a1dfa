"""Data-parallel training the way torch's launchers run it.

``torchrun --nproc_per_node N -m model.train ...`` and ``accelerate launch --multi_gpu --num_processes N -m model.train
...`` start N processes with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set;
:func:`setup` joins them into one ``torch.distributed`` process group (NCCL on GPUs, gloo on CPUs) and gives each
process its GPU (``cuda:LOCAL_RANK``). Multi-node: the same launchers with ``--nnodes``/``--node_rank``/
``--rdzv_endpoint`` (torchrun) or ``--num_machines``/``--machine_rank``/``--main_process_ip`` (accelerate); the run
folder must be on a file system every node sees. A plain ``python -m model.train`` has no ``WORLD_SIZE`` and runs
in one process exactly as before.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.distributed:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def mean(self, values: list[float]) -> list[float]:
        """The mean over ranks of a few scalars (for the log line)."""
        if not self.distributed:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return (t / self.world).tolist()

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers to every rank."""
        if self.distributed:
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, 0)

    def wrap(self, module: torch.nn.Module, find_unused_parameters: bool = False) -> torch.nn.Module:
        """``module`` in torch's DistributedDataParallel (its trainable parameters as they are now; re-wrap after
        changing which ones train), or itself in one process."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused_parameters)

    def check_in_sync(self, module: torch.nn.Module) -> str:
        """The sha256 of the trainable state on this rank; raises when another rank holds different weights."""
        h = hashlib.sha256()
        for name, p in sorted(module.named_parameters()):
            h.update(name.encode())
            h.update(p.detach().float().cpu().numpy().tobytes())
        digest = h.hexdigest()
        if self.distributed:
            everyone = [None] * self.world
            dist.all_gather_object(everyone, digest)
            if len(set(everyone)) != 1:
                raise RuntimeError(f"ranks hold different weights: {everyone}")
        return digest

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} requested but torch sees no CUDA device")
    return device


def setup(device_name: str = "auto") -> Context:
    """Join the launcher's process group when there is one (``WORLD_SIZE`` > 1), else one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(device=resolve_device(device_name))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if want_cuda:
        if not torch.cuda.is_available():
            raise ValueError(f"device: {device_name!r} requested but torch sees no CUDA device")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(minutes=60)
        )  # rank 0 validates while others wait
        owns = True
    return Context(dist.get_rank(), dist.get_world_size(), local, device, owns)

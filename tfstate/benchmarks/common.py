"""What every benchmark process shares: configs, the alternating timer, statistics, machine facts."""

import dataclasses
import json
import os
import platform
import statistics
import time

import numpy as np


@dataclasses.dataclass
class Config:
    """One workload: a stack of LSTM layers read in chunks, and a generation run."""

    layers: int = 1
    batch: int = 32
    input: int = 64
    hidden: int = 256
    steps: int = 50  # chunk length
    gen_steps: int = 200

    @property
    def name(self):
        return f"{self.layers}-layer, batch {self.batch}, input {self.input}, hidden {self.hidden}"

    def chunk_flops(self):
        """Multiply-adds x 2 of the gate matmuls over one chunk (the part that sets the compute bound)."""
        flops, depth = 0, self.input
        for _ in range(self.layers):
            flops += 2 * self.batch * self.steps * (depth + self.hidden) * 4 * self.hidden
            depth = self.hidden
        return flops


@dataclasses.dataclass
class Settings:
    warmup: int = 5  # untimed runs per variant (after the first, which compiles)
    rounds: int = 10  # rounds; each times every variant `runs` times, in turn
    runs: int = 5
    settle_s: float = 0.05  # idle time before each block of runs (lets the last variant's spinning threads sleep)


QUICK_CONFIGS = [
    Config(layers=1, batch=4, input=8, hidden=16, steps=5, gen_steps=10),
    Config(layers=2, batch=4, input=8, hidden=16, steps=5, gen_steps=10),
]
QUICK_SETTINGS = Settings(warmup=1, rounds=2, runs=2, settle_s=0.0)
FULL_CONFIGS = [Config(layers=1), Config(layers=2)]
FULL_SETTINGS = Settings()


def time_alternating(variants, settings):
    """Times `{name: run_once}` in rounds, alternating variants; returns {name: [seconds per run]}.

    Alternating A, B, C, A, B, C, ... spreads machine noise (other processes, clock changes) over
    all variants instead of charging it to whichever ran at the time. Each block starts after
    `settle_s` idle and one untimed run: PyTorch's OpenMP threads spin for a while after a call,
    and measured 25-35% slower TensorFlow runs right after a PyTorch block without the pause.
    """
    for run_once in variants.values():
        for _ in range(settings.warmup + 1):
            run_once()
    times = {name: [] for name in variants}
    for _ in range(settings.rounds):
        for name, run_once in variants.items():
            time.sleep(settings.settle_s)
            run_once()
            for _ in range(settings.runs):
                start = time.perf_counter()
                run_once()
                times[name].append(time.perf_counter() - start)
    return times


def summarize(seconds, work_per_run=1):
    """Median, min and max in ms per run, and throughput (work units per second)."""
    ms = [s * 1e3 for s in seconds]
    median = statistics.median(ms)
    return {
        "median_ms": median,
        "min_ms": min(ms),
        "max_ms": max(ms),
        "n": len(ms),
        "per_s": work_per_run * 1e3 / median,
    }


def machine_info():
    """Cores, CPU model and the flags that matter for GEMMs, OS and Python."""
    info = {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            text = cpuinfo.read()
        for line in text.splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                wanted = ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16"]
                info["cpu_flags"] = [flag for flag in wanted if flag in flags]
                break
    except OSError:
        info["cpu"] = platform.processor()
    info["env"] = {
        key: os.environ[key]
        for key in sorted(os.environ)
        if key.startswith(
            (
                "TF_ENABLE_",
                "TF_XLA_",
                "TF_NUM_",
                "TF_INTRA",
                "TF_INTER",
                "OMP_",
                "MKL_",
                "XLA_",
                "KMP_",
                "DNNL_",
                "ONEDNN_",
                "TFSTATE_",
            )
        )
    }
    return info


def random_inputs(config, seed=0):
    rng = np.random.RandomState(seed)
    return rng.uniform(-1, 1, (config.batch, config.steps, config.input)).astype(np.float32)


def write_result(path, result):
    with open(path, "w") as handle:
        json.dump(result, handle, indent=1)


def read_args(argv):
    """A suite process gets one JSON argument: configs, settings and the output path."""
    args = json.loads(argv[1])
    configs = [Config(**config) for config in args["configs"]]
    return configs, Settings(**args["settings"]), args["output"]

"""CountsDiff speed on the paper's fetal network against a research-style reference, at equal settings.

Both sides run the paper network (E = 64, 4 heads, 3 layers; SPEC section 6) on the REAL pbmc68k
training split (765 genes, its validity mask, one 10-class condition) inside the same training loop,
loss, optimiser, EMA and sampler; they differ only in the backbone: countsbench's packed pre-norm
`GeneTransformer` against `ResearchTransformer` (full G + 2 tokens with a padding mask, post-norm, the
research code's dropout placement). Per case (same batch, dropout, genes and threads) every variant's
step is timed interleaved with the others in one process, medians of ``--repeats``, in process CPU time
(robust on a loaded machine; wall time on CUDA) and reported as

- ``speedup_vs_research``: the reference's median step time over the variant's;
- ``flop_bound_multiple``: step time over (useful FLOPs by formula / this CPU's measured matmul
  throughput, measured in the same run; `speed_flops`), and ``executed_flop_multiple`` over the FLOPs of
  the padded shapes the variant actually runs; the formula is cross-checked with
  ``torch.utils.flop_counter.FlopCounterMode`` (math attention, where every product is visible to it);
- ``kernel_bound_multiple``: step time over its linear FLOPs at the matmul rate plus its attention FLOPs
  at the rate PyTorch's attention kernel measures in the same run (`speed_flops.attention_throughput`);
- peak memory: the peak RSS (`countsbench.memory`) of a fresh subprocess per variant (torch allocations
  are invisible to tracemalloc), before and after one step (``torch.cuda.max_memory_allocated`` on CUDA).

Variants: ``research``, ``countsbench`` (defaults: the committed leaderboards' numerics), and the
options, off by default (the quick transformer preset trains with ``micro_batches=2``): ``+buckets``
(``micro_batches`` length buckets with gradient accumulation in training, ``sample_buckets`` in
imputation) and ``+compile`` (``compile_model``). Imputation is one
RePaint reverse step of a 512-row chunk under guidance 0.5 (both halves in one 1,024-row forward), per
cell; ``reverse_over_forward`` is the step's time over its network forward's.

    OMP_NUM_THREADS=1 python benchmarks/countsdiff_speed.py --out benchmarks/results/countsdiff_speed.json
    python benchmarks/countsdiff_speed.py --smoke --out /tmp/speed.json   # seconds; what CI runs
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.research_transformer import ResearchTransformer  # noqa: E402
from benchmarks.speed_flops import (  # noqa: E402
    attention_flops,
    attention_throughput,
    bucket_lengths,
    linear_flops,
    matmul_throughput,
    step_flops,
)
from countsbench.context import RunContext, resolve_device  # noqa: E402
from countsbench.data import CountData  # noqa: E402
from countsbench.memory import reset_peak_rss, rss_mb  # noqa: E402
from countsbench.methods.countsdiff import CountsDiff  # noqa: E402
from countsbench.methods.countsdiff.attrition import Attrition  # noqa: E402
from countsbench.methods.countsdiff.rates import RateModel  # noqa: E402
from countsbench.methods.countsdiff.sampler import reverse_step  # noqa: E402
from countsbench.methods.diffusion.buckets import length_buckets  # noqa: E402
from countsbench.methods.diffusion.rows import TrainingRows  # noqa: E402
from countsbench.methods.diffusion.training import Trainer  # noqa: E402

GUIDANCE = 0.5


@dataclass(frozen=True)
class Network:
    dim: int = 64
    n_heads: int = 4
    n_layers: int = 3
    n_genes: int | None = None  # None: all 765


@dataclass(frozen=True)
class Variant:
    name: str
    research: bool = False
    buckets: int = 1
    compile: bool = False


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "train" or "impute"
    batch: int
    dropout: float
    attention_dropout: float
    variants: tuple[Variant, ...]
    skipped: tuple[str, ...] = ()


RESEARCH, DEFAULT = Variant("research", research=True), Variant("countsbench")


def cases(smoke: bool, compiled_variants: bool = True) -> list[Case]:
    """The benchmark's cases; the smoke run (and ``--no-compile``) leaves out the compiled variants
    (compiling takes minutes)."""
    small, large = (8, 16) if smoke else (64, 512)
    # buckets of 4 (batch 64) and 8 rows (batch 512, and 8 cells = 16 guided rows in imputation): the
    # fastest on this 2-core CPU of 4-32 rows (docs/performance.md); activations of a few rows stay in cache
    b64, b512 = (2, 4) if smoke else (16, 64)
    compiled = (Variant("countsbench+compile", compile=True),) if compiled_variants and not smoke else ()
    over = "needs about 27 GB with attention dropout's materialised L x L weights (issue 17), over this machine's 24"
    return [
        Case(
            "train_b64_shipped",
            "train",
            small,
            0.1,
            0.1,
            (RESEARCH, DEFAULT, Variant("countsbench+buckets", buckets=b64)),
        ),
        Case(
            "train_b64_attention_dropout0",
            "train",
            small,
            0.1,
            0.0,
            (RESEARCH, DEFAULT, Variant("countsbench+buckets", buckets=b64), *compiled),
        ),
        Case(
            "train_b512_attention_dropout0",
            "train",
            large,
            0.1,
            0.0,
            (RESEARCH, DEFAULT, Variant("countsbench+buckets", buckets=b512)),
        ),
        Case(
            "train_b512_shipped",
            "train",
            large,
            0.1,
            0.1,
            (Variant("countsbench+buckets", buckets=b512),),
            skipped=(f"research: {over}", f"countsbench: {over}"),
        ),
        Case(
            "impute_b512",
            "impute",
            large,
            0.1,
            0.1,
            (RESEARCH, DEFAULT, Variant("countsbench+buckets", buckets=b512), *compiled),
        ),
    ]


# --- data and models ----------------------------------------------------------------------------
def pbmc_splits(network: Network) -> tuple[CountData, CountData, np.ndarray]:
    """The pbmc_mcar task's training split, test split and test target (the first ``n_genes`` genes)."""
    from countsbench.tasks.pbmc import pbmc_mcar

    data = pbmc_mcar().load(Path("."))
    train, test, target = data.train, data.test, data.test_target
    if network.n_genes is not None:
        g = network.n_genes

        def cut(split: CountData) -> CountData:
            return CountData(split.dense()[:, :g], split.valid_mask()[:, :g], split.conditions, split.vocabularies)

        train, test, target = cut(train), cut(test), target[:, :g]
    return train, test, target


def make_method(case: Case, variant: Variant, network: Network) -> CountsDiff:
    return CountsDiff(
        network="transformer",
        dim=network.dim,
        n_heads=network.n_heads,
        n_layers=network.n_layers,
        dropout=case.dropout,
        attention_dropout=case.attention_dropout,
        batch_size=case.batch,
        micro_batches=variant.buckets if case.kind == "train" else 1,
        sample_buckets=variant.buckets if case.kind == "impute" else 1,
        compile_model=variant.compile,
        guidance=GUIDANCE,
        n_steps=20,
    )


def make_denoiser(method: CountsDiff, variant: Variant, train: CountData, network: Network):
    torch.manual_seed(0)
    method.spec = method.model_spec(train)
    denoiser = method.build_model(method.spec)
    if variant.research:
        denoiser.backbone = ResearchTransformer(
            train.n_features,
            method.vocabulary_sizes(train),
            network.dim,
            network.n_heads,
            network.n_layers,
            method.dropout,
            method.attention_dropout,
        )
    return denoiser


@dataclass
class Runner:
    """One variant's step, and the (useful, executed) sequence lengths of the rows of its next step."""

    step: Callable[[], object]
    lengths: Callable[[], tuple[list[int], list[int]]]
    rows: int  # cells per step
    training: bool
    forward_seconds: Callable[[], float] | None = None


def _executed(counts: list[int], n_extra: int, variant: Variant, groups: list[list[int]], n_genes: int) -> list[int]:
    if variant.research:
        return [n_extra + n_genes] * len(counts)
    return bucket_lengths(counts, n_extra, groups)


def train_runner(case: Case, variant: Variant, network: Network, train: CountData, ctx: RunContext) -> Runner:
    method = make_method(case, variant, network)
    denoiser = make_denoiser(method, variant, train, network)
    trainer = Trainer(denoiser, method.make_loss(), method.training_config(), ctx, method.streams)
    rows = TrainingRows(train, ctx.device)
    valid = train.valid_mask()
    n_extra = 1 + len(train.condition_keys)

    def lengths() -> tuple[list[int], list[int]]:
        index = copy.deepcopy(trainer.batches).integers(0, len(rows), case.batch)  # the next step's rows
        counts = valid[index].sum(axis=1).tolist()
        groups = [g.tolist() for g in length_buckets(torch.as_tensor(valid[index]), case.batch, variant.buckets, "cpu")]
        return [n_extra + c for c in counts], _executed(counts, n_extra, variant, groups, train.n_features)

    return Runner(lambda: trainer.train_step(rows), lengths, case.batch, True)


def impute_runner(
    case: Case, variant: Variant, network: Network, train: CountData, test: CountData, target: np.ndarray, ctx
) -> Runner:
    """One RePaint reverse step (SPEC section 5) of a ``case.batch``-row chunk of test cells, mid-grid."""
    method = make_method(case, variant, network)
    model = make_denoiser(method, variant, train, network).to(ctx.device).eval()
    method.model, method.condition_keys = model, train.condition_keys
    model = method._ready(ctx)  # what impute() runs (compiles the backbone under compile_model)
    cells = np.resize(np.arange(test.n_samples), case.batch)
    device = ctx.device
    observed = torch.as_tensor(test.dense(cells), dtype=torch.float32, device=device)
    chunk_target = torch.as_tensor(target[cells], device=device)
    keep = torch.as_tensor(test.valid_mask(cells), device=device) | chunk_target
    codes = torch.as_tensor(test.condition_matrix()[cells], device=device)
    rates = RateModel(model, codes, keep, GUIDANCE, ctx.autocast, method.sample_buckets)
    grid, attrition = method.sampler_grid(), Attrition(method.attrition, method.eta)
    i = grid.n_steps // 2
    alpha_t, alpha_s, t = float(grid.alpha[i]), float(grid.alpha[i + 1]), float(grid.t[i])
    generator = ctx.torch_generator(4)
    x = torch.binomial(observed, torch.full_like(observed, alpha_t), generator=generator) * keep
    timer = {"s": 0.0}
    unit_rates = model.unit_rates

    def timed_unit_rates(*args, **kwargs):
        _sync(device)
        start = _clock(device)
        out = unit_rates(*args, **kwargs)
        _sync(device)
        timer["s"] += _clock(device) - start
        return out

    model.unit_rates = timed_unit_rates

    @torch.inference_mode()
    def step() -> torch.Tensor:
        r = rates(x, t, alpha_t)
        sigma = attrition(alpha_t, alpha_s)
        nxt = reverse_step(x, r, alpha_t, alpha_s, sigma, generator) * keep
        known = torch.binomial(observed, torch.full_like(observed, alpha_s), generator=generator)
        return torch.where(chunk_target, nxt, known)

    counts = keep.sum(dim=1).tolist()
    n_extra = 1 + len(train.condition_keys)
    groups = [g.tolist() for g in length_buckets(keep.cpu(), case.batch, variant.buckets, "cpu")]
    executed = _executed(counts, n_extra, variant, groups, train.n_features)
    useful = [n_extra + c for c in counts]

    def lengths() -> tuple[list[int], list[int]]:
        return useful * 2, executed * 2  # both guidance halves

    def forward_seconds() -> float:
        seconds, timer["s"] = timer["s"], 0.0
        return seconds

    return Runner(step, lengths, case.batch, False, forward_seconds)


def make_runner(case: Case, variant: Variant, network: Network, splits, ctx: RunContext) -> Runner:
    train, test, target = splits
    if case.kind == "train":
        return train_runner(case, variant, network, train, ctx)
    return impute_runner(case, variant, network, train, test, target, ctx)


# --- timing -------------------------------------------------------------------------------------
def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _clock(device: str) -> float:
    """Process CPU time on the CPU (robust under load), wall time on CUDA (the CPU mostly waits)."""
    return time.perf_counter() if device == "cuda" else time.process_time()


def timed(fn: Callable[[], object], device: str) -> tuple[float, float]:
    _sync(device)
    cpu, wall = _clock(device), time.perf_counter()
    fn()
    _sync(device)
    return _clock(device) - cpu, time.perf_counter() - wall


@dataclass(frozen=True)
class Rates:
    """This machine's measured FLOPs per second: matmul (the bound) and attention in training / inference."""

    matmul: float
    attention_train: float
    attention_inference: float

    def kernel_seconds(self, lengths: list[int], network: Network, training: bool) -> float:
        """A step's useful linear FLOPs at the matmul rate plus its attention FLOPs at the attention rate."""
        dim, layers = network.dim, network.n_layers
        attention = self.attention_train if training else self.attention_inference
        return (
            step_flops(lengths, dim, layers, training, linear_flops) / self.matmul
            + step_flops(lengths, dim, layers, training, attention_flops) / attention
        )


def measure_rates(network: Network, splits, smoke: bool, ctx: RunContext) -> tuple[Rates, dict]:
    """`Rates` of this machine and their report: the matmul shapes of the paper network and the 1024
    cube (the best one is the bound), attention on 16 rows of the median training cell's length; on
    the run's device, in bf16 where the steps run under bf16 autocast (CUDA)."""
    dtype = torch.bfloat16 if ctx.mixed_precision else torch.float32
    matmul = matmul_throughput(
        [(4096, 64, 256), (4096, 256, 64), (4096, 64, 192), (512, 512, 512)]
        if smoke
        else [(30_000, 64, 256), (30_000, 256, 64), (30_000, 64, 192), (1024, 1024, 1024)],
        device=ctx.device,
        dtype=dtype,
    )
    train = splits[0]
    length = 1 + len(train.condition_keys) + int(np.median(train.valid_mask().sum(axis=1)))
    attention = {
        kind: attention_throughput(
            16, length, network.n_heads, network.dim, kind == "train", device=ctx.device, dtype=dtype
        )
        for kind in ("train", "inference")
    }
    rates = Rates(
        matmul["flops_per_cpu_s"], attention["train"]["flops_per_cpu_s"], attention["inference"]["flops_per_cpu_s"]
    )
    return rates, {"matmul": matmul, "attention": attention}


def run_case(case: Case, network: Network, splits, ctx: RunContext, repeats: int, rates: Rates) -> dict:
    """Every variant's step, interleaved, ``repeats`` times after one warm-up each."""
    runners = {v.name: make_runner(case, v, network, splits, ctx) for v in case.variants}
    records: dict[str, dict[str, list[float]]] = {name: {} for name in runners}
    for name, runner in runners.items():
        records[name]["warmup_s"] = [timed(runner.step, ctx.device)[0]]
        if runner.forward_seconds is not None:
            runner.forward_seconds()
    for _ in range(repeats):
        for name, runner in runners.items():
            useful, executed = runner.lengths()
            seconds, wall = timed(runner.step, ctx.device)
            record = records[name]
            record.setdefault("step_s", []).append(seconds)
            record.setdefault("wall_s", []).append(wall)
            record.setdefault("useful_flops", []).append(
                step_flops(useful, network.dim, network.n_layers, runner.training)
            )
            record.setdefault("executed_flops", []).append(
                step_flops(executed, network.dim, network.n_layers, runner.training)
            )
            record.setdefault("kernel_s", []).append(rates.kernel_seconds(useful, network, runner.training))
            if runner.forward_seconds is not None:
                record.setdefault("forward_s", []).append(runner.forward_seconds())
    research = statistics.median(records["research"]["step_s"]) if "research" in records else None
    variants = []
    for variant in case.variants:
        record, runner = records[variant.name], runners[variant.name]
        step = statistics.median(record["step_s"])
        bound = [s * rates.matmul / f for s, f in zip(record["step_s"], record["useful_flops"], strict=True)]
        executed = [s * rates.matmul / f for s, f in zip(record["step_s"], record["executed_flops"], strict=True)]
        kernel = [s / k for s, k in zip(record["step_s"], record["kernel_s"], strict=True)]
        row = {
            "variant": variant.name,
            "options": asdict(variant),
            "step_s": step,
            "step_s_all": record["step_s"],
            "wall_s": statistics.median(record["wall_s"]),
            "warmup_s": record["warmup_s"][0],
            "cells_per_s": runner.rows / step,
            "per_cell_ms": 1e3 * step / runner.rows,
            "useful_gflops": statistics.median(record["useful_flops"]) / 1e9,
            "executed_gflops": statistics.median(record["executed_flops"]) / 1e9,
            "speedup_vs_research": None if research is None else research / step,
            "flop_bound_multiple": statistics.median(bound),
            "executed_flop_multiple": statistics.median(executed),
            "kernel_bound_multiple": statistics.median(kernel),
        }
        if "forward_s" in record:
            forward = statistics.median(record["forward_s"])
            row.update(forward_s=forward, reverse_over_forward=step / forward)
        variants.append(row)
        print(f"  {case.name:32s} {variant.name:22s} {step:8.3f} s  x{row['speedup_vs_research'] or 0:.2f}", flush=True)
    return {
        "case": case.name,
        "kind": case.kind,
        "batch": case.batch,
        "dropout": case.dropout,
        "attention_dropout": case.attention_dropout,
        "guidance": GUIDANCE if case.kind == "impute" else None,
        "variants": variants,
        "skipped": list(case.skipped),
    }


# --- memory -------------------------------------------------------------------------------------
def memory_probe(runner: Runner, device: str) -> dict:
    """Peak memory of one step: the process's peak RSS is reset after the setup, so the setup's own
    peak (reading the data) does not hide the step's."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    reset = reset_peak_rss()
    before = rss_mb("VmRSS")
    runner.step()
    result = {"rss_before_step_mb": before, "peak_rss_mb": rss_mb("VmHWM"), "peak_reset": reset}
    result["step_rss_increase_mb"] = result["peak_rss_mb"] - before
    if device == "cuda":
        result["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def measure_memory(case: Case, variant: Variant, args: argparse.Namespace) -> dict:
    """`memory_probe` of one step in a fresh subprocess (a clean allocator; compiled variants skipped:
    compiling again costs minutes and the compiled step's memory is the eager one's up to the fusions)."""
    if variant.compile:
        return {"skipped": "compiled variant"}
    command = [sys.executable, __file__, "--memory-probe", case.name, variant.name, "--device", args.device]
    command += ["--threads", str(args.threads)] + (["--smoke"] if args.smoke else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
    return {"method": "subprocess", **json.loads(done.stdout.strip().splitlines()[-1])}


# --- cross-checks and profile -------------------------------------------------------------------
def flop_counter_check(network: Network, splits, ctx: RunContext) -> dict:
    """FLOPs by formula against ``FlopCounterMode`` for one training forward + backward of 4 rows of
    each backbone, under math attention (the counter does not see the CPU flash kernel)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    train = splits[0]
    case = Case("check", "train", 4, 0.0, 0.0, ())
    out = {}
    for variant in (RESEARCH, DEFAULT):
        method = make_method(case, variant, network)
        model = make_denoiser(method, variant, train, network).train()
        x0 = torch.as_tensor(train.dense(np.arange(4)), dtype=torch.float32)
        valid = torch.as_tensor(train.valid_mask(np.arange(4)))
        codes = torch.as_tensor(train.condition_matrix()[:4])
        n_extra = 1 + len(train.condition_keys)
        counts = valid.sum(dim=1).tolist()
        lengths = [n_extra + (train.n_features if variant.research else max(counts))] * 4
        counter = FlopCounterMode(display=False)
        with sdpa_kernel(SDPBackend.MATH), counter:
            alpha = torch.full((4,), 0.5, dtype=torch.float64)
            rate = model(x0, torch.full((4,), 0.5), alpha, codes, torch.ones(4, dtype=torch.bool), valid)
            rate.sum().backward()
        formula = step_flops(lengths, network.dim, network.n_layers, training=True)
        counted = counter.get_total_flops()
        out[variant.name] = {"formula": formula, "flop_counter": counted, "counter_over_formula": counted / formula}
    return out


def top_ops(step: Callable[[], object], n: int = 10) -> list[dict]:
    """The ``n`` ops with the most self CPU time in one step (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    return [
        {"op": e.key, "self_cpu_ms": e.self_cpu_time_total / 1e3, "share": e.self_cpu_time_total / total}
        for e in events[:n]
    ]


def profiles(network: Network, splits, ctx: RunContext, smoke: bool) -> dict:
    """Top ops of one batch-64 training step, as shipped and with attention dropout 0, default and
    bucketed (after one warm-up step each)."""
    out = {}
    for case in cases(smoke)[:2]:
        for variant in (DEFAULT, case.variants[2]):
            runner = make_runner(case, variant, network, splits, ctx)
            runner.step()
            out[f"{case.name}/{variant.name}"] = top_ops(runner.step)
    return out


# --- main ---------------------------------------------------------------------------------------
def machine_load() -> dict:
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    return {"uptime": uptime, "loadavg": list(os.getloadavg()), "cpus": os.cpu_count()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/countsdiff_speed.json"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the comparison's setting)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per variant (medians)")
    parser.add_argument("--only", nargs="*", help="case names to run")
    parser.add_argument("--smoke", action="store_true", help="a tiny network on 64 genes: runs in seconds (CI)")
    parser.add_argument(
        "--memory",
        choices=("subprocess", "in-process", "off"),
        default=None,
        help="peak memory per variant: a fresh subprocess each (default), in this process (the smoke default)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the torch.profiler top ops")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile variants")
    parser.add_argument("--memory-probe", nargs=2, metavar=("CASE", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.device = resolve_device(args.device)
    network = Network(dim=16, n_heads=2, n_layers=1, n_genes=64) if args.smoke else Network()
    ctx = RunContext(seed=0, device=args.device, profile="paper", show_progress=False)
    all_cases = {case.name: case for case in cases(args.smoke, not args.no_compile)}
    if args.memory_probe:
        case = all_cases[args.memory_probe[0]]
        variant = next(v for v in case.variants if v.name == args.memory_probe[1])
        runner = make_runner(case, variant, network, pbmc_splits(network), ctx)
        print(json.dumps(memory_probe(runner, ctx.device)))
        return
    unknown = sorted(set(args.only or ()) - set(all_cases))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(all_cases)}")
    memory = args.memory or ("in-process" if args.smoke else "subprocess")
    load_before = machine_load()
    splits = pbmc_splits(network)
    rates, measured_rates = measure_rates(network, splits, args.smoke, ctx)
    results = []
    for case in all_cases.values():
        if args.only and case.name not in args.only:
            continue
        result = run_case(case, network, splits, ctx, args.repeats, rates)
        for row, variant in zip(result["variants"], case.variants, strict=True):
            if memory == "subprocess":
                row["memory"] = measure_memory(case, variant, args)
            elif memory == "in-process":
                runner = make_runner(case, variant, network, splits, ctx)
                row["memory"] = {"method": "in-process", **memory_probe(runner, ctx.device)}
        results.append(result)
    train, _, _ = splits
    counts = train.valid_mask().sum(axis=1)
    report = {
        "benchmark": "countsdiff_speed",
        "device": args.device,
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "bf16_autocast": ctx.mixed_precision,
        "time_basis": "wall" if args.device == "cuda" else "process_cpu",
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "smoke": args.smoke,
        "torch": torch.__version__,
        "platform": platform.platform(),
        "machine_load": {"before": load_before, "after": machine_load()},
        "network": asdict(replace(network, n_genes=train.n_features)),
        "data": {
            "task": "pbmc_mcar",
            "split": "train",
            "cells": int(train.n_samples),
            "genes": int(train.n_features),
            "valid_genes_per_cell": {
                "min": int(counts.min()),
                "median": float(np.median(counts)),
                "max": int(counts.max()),
            },
        },
        **measured_rates,
        "flop_counter_check": flop_counter_check(network, splits, ctx),
        "profiles": {} if args.no_profile else profiles(network, splits, ctx, args.smoke),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

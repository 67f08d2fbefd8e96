"""Markdown rendering of the benchmark results (the tables docs/benchmarks.md holds)."""

from tfstate.benchmarks.common import Config


def _row(framework, name, entry, unit):
    return (
        f"| {framework} | {name} | {entry['median_ms']:.2f} | {entry['min_ms']:.2f}–{entry['max_ms']:.2f} "
        f"| {entry['per_s']:.0f} {unit} | {entry['ratio']:.2f}× |"
    )


def markdown(results):
    machine = results["machine"]
    lines = ["## Machine", ""]
    lines.append(
        f"- CPU: {machine.get('cpu', '?')}, {machine['cores']} cores, flags: {', '.join(machine.get('cpu_flags', []))}"
    )
    lines.append(f"- Python {machine['python']}, {machine['platform']}")
    tf_result = results["frameworks"].get("tf", {})
    if "tensorflow" in tf_result:
        threads = tf_result.get("threads", {})
        lines.append(
            f"- TensorFlow {tf_result['tensorflow']}, intra-op threads {threads.get('intra_op')}, "
            f"inter-op {threads.get('inter_op')} (0 = one per core); environment "
            f"{machine['env'] or '(no TF_/OMP_/XLA_ variables set; oneDNN on by default)'}"
        )
    torch_result = results["frameworks"].get("torch", {})
    if "torch" in torch_result:
        info = torch_result["torch"]
        lines.append(f"- PyTorch {info['version']}, {info['threads']} threads, oneDNN {info['mkldnn']}")
    lines += _native_lines(results)
    gemm = tf_result.get("gemm_flops")
    if gemm:
        lines.append(f"- Measured GEMM rate (1024³ float32 matmul, TF, best of 10): {gemm / 1e9:.0f} GFLOP/s")
    lines.append(
        f"- Timing: {results['settings']}; ratios are against the baseline timed in the same process "
        "(alternating runs), > 1 is faster"
    )
    for framework, result in results["frameworks"].items():
        if "skipped" in result:
            lines.append(f"- {framework}: skipped: {result['skipped']}")
        if "error" in result:
            lines.append(f"- {framework}: FAILED: {result['error']}")
    by_config = {}
    for framework, result in results["frameworks"].items():
        for entry in result.get("configs", []):
            key = tuple(sorted(entry["config"].items()))
            by_config.setdefault(key, []).append((framework, entry))
    for key, entries in by_config.items():
        config = Config(**dict(key))
        lines += ["", f"## {config.name}", ""]
        bound = f"{config.chunk_flops() / gemm * 1e3:.2f} ms" if gemm else "n/a"
        lines.append(
            f"Streaming: chunks of {config.steps} steps, forward only, "
            f"{config.chunk_flops() / 1e9:.2f} GFLOP per chunk; compute bound at the measured GEMM rate: "
            f"{bound} per chunk."
        )
        lines += [
            "",
            "| process | variant | ms/chunk (median) | min–max | throughput | vs baseline |",
            "|---|---|---|---|---|---|",
        ]
        for framework, entry in entries:
            for name, stats in entry.get("streaming", {}).items():
                lines.append(_row(framework, name, stats, "chunks/s"))
        reasons = {entry["native"] for _, entry in entries if entry.get("native", "used") != "used"}
        for reason in sorted(reasons):
            lines += ["", f"No compiled-kernel row: {reason}."]
        lines += [
            "",
            f"Generation: {config.gen_steps} steps, each output through a dense layer back to the input.",
            "",
            "| process | variant | ms/run (median) | min–max | throughput | vs baseline |",
            "|---|---|---|---|---|---|",
        ]
        for framework, entry in entries:
            for name, stats in entry.get("generation", {}).items():
                scaled = dict(stats, per_s=stats["per_s"] * config.gen_steps)
                lines.append(_row(framework, name, scaled, "steps/s"))
        if any("training" in entry for _, entry in entries):
            lines += [
                "",
                f"Training: one SGD step on a {config.steps}-step chunk (forward, backward, update), state kept.",
                "",
                "| process | variant | ms/step (median) | min–max | throughput | vs baseline |",
                "|---|---|---|---|---|---|",
            ]
            for framework, entry in entries:
                for name, stats in entry.get("training", {}).items():
                    lines.append(_row(framework, name, stats, "steps/s"))
        lines += _gru_tables(config, entries)
        for _framework, entry in entries:
            if "op_count" in entry:
                ops = entry["op_count"]
                lines += [
                    "",
                    f"Op count of the tfstate keep graph: {ops['before']} before, {ops['after']} after "
                    f"{ops['runs']} runs of keep / step flag / row reset / reset"
                    f" ({'constant' if ops['before'] == ops['after'] else 'GREW'}).",
                ]
    return "\n".join(lines) + "\n"


def _native_lines(results):
    """The Machine section's line on the compiled kernel: the variant each process ran, and TFSTATE_* variables."""
    facts = {framework: result["native"] for framework, result in results["frameworks"].items() if "native" in result}
    lines = []
    for framework, native in facts.items():
        ran = f"variant '{native['variant']}'" if native["variant"] else f"not used ({native['not_used']})"
        env = ", ".join(f"{key}={value}" for key, value in native["env"].items()) or "no TFSTATE_* variables set"
        lines.append(f"- Compiled kernel, {framework} process: {ran} of {', '.join(native['variants'])}; {env}")
    return lines


def _gru_tables(config, entries):
    """The GRU tables (streaming and training) of a config, where a process measured them."""
    lines = []
    for key, title, unit in (
        ("gru_streaming", f"GRU streaming: chunks of {config.steps} steps, forward only.", "chunks/s"),
        ("gru_training", f"GRU training: one SGD step on a {config.steps}-step chunk, state kept.", "steps/s"),
    ):
        if not any(key in entry for _, entry in entries):
            continue
        lines += [
            "",
            title,
            "",
            "| process | variant | ms (median) | min–max | throughput | vs baseline |",
            "|---|---|---|---|---|---|",
        ]
        for framework, entry in entries:
            for name, stats in entry.get(key, {}).items():
                lines.append(_row(framework, name, stats, unit))
    return lines

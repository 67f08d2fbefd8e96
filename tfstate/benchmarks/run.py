"""The benchmark driver: one subprocess per framework, then one Markdown table and one JSON file.

    python -m tfstate.benchmarks.run [--quick] [--frameworks tf,keras,torch] [--json PATH] [--markdown PATH]

(also `tfstate bench ...`). Each framework runs in its own process (`tfstate.benchmarks.suite`), so
thread pools and allocators of one never slow another; each process times the TF1 baseline
alongside its own variants, and ratios are taken against that in-process baseline.
"""

import argparse
import datetime
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import tfstate
from tfstate.benchmarks import common, report

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(tfstate.__file__)))

FRAMEWORKS = ("tf", "keras", "torch")


def configure(parser):
    parser.add_argument("--quick", action="store_true", help="tiny configs, few repeats: checks the harness works")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="comma-separated subset of tf,keras,torch")
    parser.add_argument("--layers", default="1,2", help="layer counts to run (default 1,2)")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 10, quick 2)")
    parser.add_argument("--json", dest="json_path", help="write the results here as JSON")
    parser.add_argument("--markdown", dest="markdown_path", help="write the Markdown report here")


def _run_framework(framework, configs, settings, timeout):
    with tempfile.TemporaryDirectory() as folder:
        output = os.path.join(folder, "result.json")
        args = json.dumps({"configs": [c.__dict__ for c in configs], "settings": settings.__dict__, "output": output})
        # The suite imports the tfstate this process runs (installed, or a checkout on PYTHONPATH), from
        # the scratch folder: `-m` puts the working directory first on sys.path, and a package that
        # happens to sit in the caller's folder must never be imported.
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_PACKAGE_PARENT, os.environ.get("PYTHONPATH")]))
        )
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        process = subprocess.run(
            [sys.executable, "-m", "tfstate.benchmarks.suite", framework, args],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if process.returncode != 0 or not os.path.exists(output):
            tail = "\n".join(process.stderr.strip().splitlines()[-15:])
            return {"framework": framework, "error": f"exit status {process.returncode}: {tail}"}
        with open(output) as handle:
            return json.load(handle)


def run(args):
    settings = common.QUICK_SETTINGS if args.quick else common.FULL_SETTINGS
    if args.rounds:
        settings = common.Settings(settings.warmup, args.rounds, settings.runs)
    layers = {int(n) for n in args.layers.split(",")}
    configs = [c for c in (common.QUICK_CONFIGS if args.quick else common.FULL_CONFIGS) if c.layers in layers]
    frameworks = [f for f in args.frameworks.split(",") if f]
    unknown = set(frameworks) - set(FRAMEWORKS)
    if unknown:
        print(f"tfstate bench: unknown framework(s) {sorted(unknown)}; choose from {FRAMEWORKS}.", file=sys.stderr)
        return 2
    results = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "quick": args.quick,
        "settings": settings.__dict__,
        "machine": common.machine_info(),
        "command": "tfstate bench " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else sys.argv[1:]),
        "frameworks": {},
    }
    for framework in frameworks:
        if framework == "torch" and importlib.util.find_spec("torch") is None:
            results["frameworks"]["torch"] = {"skipped": "PyTorch is not installed (pip install 'tfstate[bench]')"}
            continue
        print(f"running {framework} ...", file=sys.stderr, flush=True)
        timeout = 600 if args.quick else 3600
        results["frameworks"][framework] = _run_framework(framework, configs, settings, timeout)
    text = report.markdown(results)
    print(text)
    if args.json_path:
        with open(args.json_path, "w") as handle:
            json.dump(results, handle, indent=1)
    if args.markdown_path:
        with open(args.markdown_path, "w") as handle:
            handle.write(text)
    failed = [name for name, result in results["frameworks"].items() if "error" in result]
    return 1 if failed else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tfstate.benchmarks.run", description=__doc__.splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""What the compare_*.py scripts (and the peer scripts) share. Standard library only.

The compare scripts import it from their own folder:
    HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, HERE)
    import bench_common
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def default_python():
    """/usr/bin/python3 when it exists (Debian's python3-torch, python3-opencv live there), else this one."""
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def split_passthrough(argv):
    """(the script's own arguments, what follows the first "--": flags for the benchmark binary)."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def add_gbench_arguments(parser, binary, min_time, repetitions=3):
    """The options every compare script has for its binary: [binary], --min-time, --repetitions."""
    parser.add_argument("binary", nargs="?", default=binary)
    parser.add_argument("--min-time", default=min_time,
                        help="--benchmark_min_time (Google Benchmark 1.7: seconds, no suffix)")
    parser.add_argument("--repetitions", type=int, default=repetitions,
                        help="Google Benchmark repetitions (median shown)")


def add_torch_peer_arguments(parser, script, repeats, repeats_help, peers="peer"):
    """--python, --torch-repeats, --no-torch, --json-out: the options of a compare script whose peer
    is a torchvision script in this folder printing JSON lines (see run_torch_peer)."""
    parser.add_argument("--python", default=default_python(), help=f"interpreter for {script}")
    parser.add_argument("--torch-repeats", type=int, default=repeats, help=repeats_help)
    parser.add_argument("--no-torch", action="store_true", help=f"skip the torchvision {peers}")
    parser.add_argument("--json-out", help="write the raw results (both tools) to this file")


def run_torch_peer(args, script):
    """(rows, None) or (None, why) from `args.python script --repeats=args.torch_repeats`."""
    if args.no_torch:
        return None, "skipped (--no-torch)"
    return run_peer_lines(args.python, os.path.join(HERE, script), [f"--repeats={args.torch_repeats}"])


def parse_passthrough(parser, argv=None):
    """(parsed arguments, flags after "--" for the binary), from argv or sys.argv[1:]."""
    own, extra = split_passthrough(sys.argv[1:] if argv is None else argv)
    return parser.parse_args(own), extra


def binary_missing(binary, target):
    """True, after saying so on stderr, when the benchmark binary is not there."""
    if os.path.exists(binary):
        return False
    print(f"{binary} not found: build the {target} target first", file=sys.stderr)
    return True


def host_line(context):
    """"host cpus=N; library_build_type=T" from a Google Benchmark context."""
    return f"host cpus={context.get('num_cpus')}; library_build_type={context.get('library_build_type')}"


def problem_line(context, keys):
    """"problem: a=1, b=2; host ...": the context's focal_* keys that are there, without the prefix."""
    return ("problem: " + ", ".join(f"{k.replace('focal_', '')}={context[k]}" for k in keys if k in context)
            + "; " + host_line(context))


def torch_peer_line(tv, tv_error, python, what):
    """The "peer: torchvision ..." line under a table; what: how it was timed."""
    if tv:
        return f"peer: torchvision {tv[0]['torchvision']} / torch {tv[0]['torch']} ({python}), {what}"
    return f"peer: torchvision unavailable ({tv_error}); focal's numbers only"


def write_json_out(path, doc):
    """--json-out: the raw results, when a path is given."""
    if path:
        with open(path, "w") as f:
            json.dump(doc, f, indent=2)


def _log_running(cmd, env=None, note=""):
    prefix = "".join(f"{k}={v} " for k, v in (env or {}).items())
    print("running: " + prefix + " ".join(cmd) + note, file=sys.stderr, flush=True)


def run_gbench(binary, benchmark_filter, min_time, repetitions, extra=(), env=None):
    """Runs a Google Benchmark binary with --benchmark_format=json; returns (context, rows).

    benchmark_filter: a --benchmark_filter regex, or None for all. With repetitions > 1 only the
    aggregates are reported and the medians kept. env: extra environment variables. rows maps
    each benchmark's run_name (its name without repetition suffixes) to its JSON object, in the
    binary's order; failed benchmarks are reported on stderr and left out.
    """
    cmd = [binary, "--benchmark_format=json"]
    if benchmark_filter is not None:
        cmd.append(f"--benchmark_filter={benchmark_filter}")
    cmd.append(f"--benchmark_min_time={min_time}")
    if repetitions > 1:
        cmd += [f"--benchmark_repetitions={repetitions}", "--benchmark_report_aggregates_only=true"]
    cmd += list(extra)
    _log_running(cmd, env)
    full_env = dict(os.environ, **env) if env else None
    doc = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env=full_env).stdout)
    rows = {}
    for b in doc["benchmarks"]:
        if b.get("error_occurred"):
            print(f"{b['name']}: error: {b.get('error_message')}", file=sys.stderr)
            continue
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        rows[b.get("run_name", b["name"])] = b
    return doc.get("context", {}), rows


def real_seconds(b):
    """A Google Benchmark row's wall time per iteration, in seconds."""
    return b["real_time"] * UNIT_SECONDS[b.get("time_unit", "ns")]


def run_peer_lines(python, script, args=(), need_available=True, note=""):
    """Runs a peer script that prints one JSON object a line; returns (rows, None) or (None, why).

    need_available: the first row must say "available": true (the peers print
    {"available": false, "reason": ...} when their library is missing); otherwise any row will do,
    and a row with "available": false still counts as the peer being missing.
    """
    if not python or not os.path.exists(python):
        return None, f"python interpreter {python!r} not found"
    cmd = [python, script, *args]
    _log_running(cmd, note=note)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        return None, f"{script} exited with {proc.returncode}"
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip().startswith("{")]
    if not rows or not rows[0].get("available", not need_available):
        return None, rows[0].get("reason", "no output") if rows else "no output"
    return rows, None


def run_peer_json(python, script, args=()):
    """Runs a peer script that prints one JSON document; returns it (raises if the script fails)."""
    cmd = [python, script, *args]
    _log_running(cmd)
    return json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout)


def peer_unavailable(name, library, error):
    """For a peer script whose library does not import: says so on stderr and as its one JSON line."""
    msg = f"{library} not importable with {sys.executable}: {error!r}"
    print(msg, file=sys.stderr)
    print(json.dumps({"name": name, "available": False, "reason": msg}))

"""The ``fastconv`` command: ``info``, ``shapes``, ``bench``, ``demo``, ``tune``."""

import argparse
import importlib
import sys

# subcommand -> (module with a ``main(argv) -> int``, one-line help)
COMMANDS = {
    "info": ("fastconv.cli", "show version, instruction set, OpenMP and threads"),
    "shapes": ("fastconv.shapes.cli", "output sizes, parameters and receptive fields of a network"),
    "bench": ("fastconv._bench_cli", "time real-network layers against PyTorch / ONNX Runtime"),
    "demo": ("fastconv._demo", "edge detection and a small CNN block on a built-in image"),
    "tune": ("fastconv._tune_cli", "fill the algorithm=\"measure\" cache for layers or a model"),
    "run": ("fastconv._run_cli", "run an ONNX model, time it, compare with ONNX Runtime"),
}


def info_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fastconv info",
        description="Show what this fastconv build is and what it will use "
                    "(same as fastconv.show_config()).",
        epilog="examples:\n  fastconv info\n  FASTCONV_ISA=scalar fastconv info\n"
               "  fastconv info --json\n"
               "  fastconv info --peak            # this CPU's FMA peak per ISA and read "
               "bandwidth (a few seconds)\n"
               "  fastconv info --peak --threads 1,2,4 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the config as JSON")
    parser.add_argument("--peak", action="store_true",
                        help="measure this CPU's FMA peak (GFLOP/s) per instruction set and its "
                             "DRAM read bandwidth (GB/s); takes a few seconds")
    parser.add_argument("--threads", default="1,2", metavar="1,2",
                        help="thread counts for --peak (default 1,2; -1 = all CPUs)")
    args = parser.parse_args(argv)
    from . import _config

    if args.peak:
        return _peak_main(args)
    if args.json:
        import json

        print(json.dumps(_config.config(), indent=2))
    else:
        _config.show_config()
    return 0


def _peak_main(args) -> int:
    from . import _config, _peak
    from ._bench_cli import _thread_counts

    try:
        threads = _thread_counts(args.threads)
    except ValueError as exc:
        print(f"fastconv info: {exc}", file=sys.stderr)
        return 2
    try:
        cpu = _config._cpu_model()
        figures = _peak.measure(threads)
    except ImportError as exc:  # the compiled core is not built
        print(f"fastconv info: {exc}", file=sys.stderr)
        return 2
    if args.json:
        import json

        print(json.dumps({"cpu": cpu, **figures}, indent=2))
    else:
        print(_peak.format_report(figures, cpu))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    lines = "\n".join(f"  {name:<8} {text}" for name, (_, text) in COMMANDS.items())
    usage = f"usage: fastconv COMMAND [options]\n\ncommands:\n{lines}\n\n" \
            "`fastconv COMMAND --help` explains each one with examples."
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    if argv[0] == "--version":
        from ._version import __version__

        print(__version__)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"fastconv: unknown command {command!r}\n\n{usage}", file=sys.stderr)
        return 2
    if command == "info":
        return info_main(rest)
    try:
        module = importlib.import_module(COMMANDS[command][0])
    except ModuleNotFoundError as exc:
        print(f"fastconv {command}: not available in this build ({exc})", file=sys.stderr)
        return 2
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())

"""The `hmm-updater` command: recreate, recover, api, worker, run."""

from __future__ import annotations

import argparse
import sys

from worker.errors import UpdaterError
from worker.progress import ERROR, print_sink
from worker.settings import get_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hmm-updater", description="Update Docker containers in place.")
    commands = parser.add_subparsers(dest="command", required=True)
    recreate = commands.add_parser("recreate", help="update one container now, in this process (no queue)")
    recreate.add_argument("name", help="container name")
    recreate.add_argument("--image", help="new image reference (default: newest main-<sha> image)")
    recreate.add_argument("--force", action="store_true", help="recreate even when the image is unchanged")
    commands.add_parser("recover", help="finish or roll back updates interrupted by a crash")
    commands.add_parser("api", help="serve the HTTP API and web UI")
    commands.add_parser("worker", help="run an RQ worker that performs updates")
    commands.add_parser("run", help="API and one worker together (starts a private Redis if REDIS_URL is unset)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    try:
        if args.command == "recreate":
            from worker.update import perform_update

            perform_update(args.name, args.image, settings, print_sink, force=args.force)
        elif args.command == "recover":
            from worker.update import recover_all

            recover_all(settings, print_sink)
        elif args.command == "api":
            from api.main import serve

            serve(settings)
        elif args.command == "worker":
            from worker.service import run_worker

            run_worker(settings)
        elif args.command == "run":
            from worker.service import run_all

            run_all(settings)
    except UpdaterError as exc:
        print_sink(ERROR, f"❌ {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

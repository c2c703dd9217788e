"""`hf-sepnorm push FOLDER REPO_ID [--private] [--revision R] [--token T] [--commit-message M]`."""

from __future__ import annotations

import argparse
import sys

from .push import CheckpointFolderError, HubPushError, push_to_hub


def add_push_command(commands: argparse._SubParsersAction) -> None:
    push = commands.add_parser(
        "push",
        help="push a saved SepNorm checkpoint folder to the Hub as one commit, with its model card",
        description="Push a SepNorm checkpoint folder (save_pretrained or Trainer output) to the Hub as one commit.",
    )
    push.add_argument("folder", help="the folder save_pretrained (or the Trainer) wrote")
    push.add_argument("repo_id", help="the Hub repo, 'namespace/name' (created if needed)")
    push.add_argument(
        "--private", action="store_true", help="create the repo private (an existing repo keeps its visibility)"
    )
    push.add_argument("--revision", help="the branch to commit to (created if needed; default: main)")
    push.add_argument("--token", help="a Hub access token (default: HF_TOKEN or the saved login)")
    push.add_argument("--commit-message", help="the commit's title")
    push.set_defaults(run=run_push)


def run_push(args: argparse.Namespace) -> int:
    try:
        commit = push_to_hub(
            args.folder,
            args.repo_id,
            token=args.token,
            private=args.private or None,
            revision=args.revision,
            commit_message=args.commit_message,
        )
    except CheckpointFolderError as error:  # the user's folder or arguments: nothing was sent
        print(f"hf-sepnorm push: error: {error}", file=sys.stderr)
        return 2
    except HubPushError as error:  # the Hub failed or did not answer
        print(f"hf-sepnorm push: error: {error}", file=sys.stderr)
        return 1
    print(commit.commit_url)
    return 0

"""`hf-sepnorm push FOLDER REPO_ID [--private] [--revision R] [--token T] [--commit-message M]
[--modified-code-is-mine]` (parsed by
`hf_sepnorm_cli`)."""

from __future__ import annotations

import argparse
import sys

from .push import CheckpointFolderError, HubPushError, push_to_hub


def run_push(args: argparse.Namespace) -> int:
    try:
        commit = push_to_hub(
            args.folder,
            args.repo_id,
            token=args.token,
            private=args.private or None,
            revision=args.revision,
            commit_message=args.commit_message,
            modified_code_is_mine=args.modified_code_is_mine,
        )
    except CheckpointFolderError as error:  # the user's folder or arguments: nothing was sent
        print(f"hf-sepnorm push: error: {error}", file=sys.stderr)
        return 2
    except HubPushError as error:  # the Hub failed or did not answer
        print(f"hf-sepnorm push: error: {error}", file=sys.stderr)
        return 1
    print(commit.commit_url)
    return 0

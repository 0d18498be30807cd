"""The on-call alerts: a webhook notification block and the automations of automations.yaml."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import yaml  # type: ignore[import-untyped]  # no stubs in the lock; a dict is all we read

from flows.settings import alert_url

AUTOMATIONS_FILE = Path(__file__).with_name("automations.yaml")
BLOCK_NAME = "wirehouse-oncall"
BLOCK_PLACEHOLDER = "WIREHOUSE_ALERT_BLOCK"
# What the webhook receives: `text` for chat tools that take it (Slack, Mattermost), and the
# subject and body apart for anything else.
WEBHOOK_JSON = {"text": "{{subject}}\n{{body}}", "subject": "{{subject}}", "body": "{{body}}"}


def automation_specs(block_id: UUID, path: Path = AUTOMATIONS_FILE) -> list[dict[str, Any]]:
    """The automations of the file, their notification actions pointed at the block."""
    specs: list[dict[str, Any]] = yaml.safe_load(path.read_text())["automations"]
    for spec in specs:
        for action in spec["actions"]:
            if action.get("block_document_id") == BLOCK_PLACEHOLDER:
                action["block_document_id"] = str(block_id)
    return specs


def install_alerts(url: str, path: Path = AUTOMATIONS_FILE) -> list[UUID]:
    """Save the webhook block for `url` and (re)create the automations; their ids."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore
    from prefect.types import SecretDict

    # The URL is the webhook's secret (a chat hook's path is its token): kept among the block's
    # secrets, which Prefect stores encrypted and shows masked, and put in at sending time.
    block = CustomWebhookNotificationBlock(
        name=BLOCK_NAME,
        url="{{webhook_url}}",
        secrets=SecretDict({"webhook_url": url}),
        json_data=WEBHOOK_JSON,
        headers=None,
        cookies=None,
    )
    block_id = cast(UUID, block.save(BLOCK_NAME, overwrite=True))  # sync here: not in a loop
    created = []
    with get_client(sync_client=True) as client:
        for spec in automation_specs(block_id, path):
            for old in client.read_automations_by_name(spec["name"]):
                client.delete_automation(old.id)
            created.append(client.create_automation(AutomationCore.model_validate(spec)))
    return created


def main(argv: list[str] | None = None) -> int:
    """`python -m deployments.alerts [--url URL]`: install the alerts on PREFECT_API_URL."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="where alerts are posted (default: WIREHOUSE_ALERT_URL)")
    args = parser.parse_args(argv)
    url = args.url or alert_url()
    if not url:
        print(
            "no alerts installed: set WIREHOUSE_ALERT_URL (or --url) to the webhook that should "
            "receive them, then run `make deploy` again",
            file=sys.stderr,
        )
        return 0
    ids = install_alerts(url)
    print(f"webhook block {BLOCK_NAME!r} -> {_shown(url)}; automations: {', '.join(map(str, ids))}")
    return 0


def _shown(url: str) -> str:
    """Where alerts go, as output may show it: the scheme and host, not the secret path."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…"


if __name__ == "__main__":
    raise SystemExit(main())

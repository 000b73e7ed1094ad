"""The hostile tests reuse the webhook security suite's environment."""

from tests.acceptance.test_webhook_security import env  # noqa: F401

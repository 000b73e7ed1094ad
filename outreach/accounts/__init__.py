"""Accounts and buying committees: which account a contact belongs to and in what role, the account's
stage derived from its members' stages, and the coordination of touches across one account.

`rules` parses the `accounts:` section (a leaf the rule reader imports), `derive` decides (pure),
`store` writes (imports, stage refresh, pauses), `info` reads for the CLI and the pages."""

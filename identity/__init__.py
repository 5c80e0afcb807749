"""Who the caller is, from outside: OIDC access tokens of the organisation's identity provider."""

"""Identity for companies (issue 25, docs/identity.md): single sign-on through OpenID Connect
(``oidc``, ``sso``), groups mapped to roles (``groups``), and SCIM 2.0 provisioning (``scim``,
``scim_storage``). Their SQL is in ``store/identity.py``."""

"""Every write and business rule of the payments app (DESIGN.md §2), one module per kind of work:
`onboarding` (applications: submission and polling), `merchants` (authorisation tokens), `trades`
(precreate, status, notifications), `refunds`; `calls` is the one place they call Alipay."""

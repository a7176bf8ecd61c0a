"""Every write and business rule of the payments app (DESIGN.md §2), one module per kind of work:
`onboarding` (staff entry points and the worker loop for applications), `submission` (the three Alipay
steps), `polling` (status queries, confirmation link, overdue flag), `merchants` (authorisation tokens),
`trades` (precreate, status, notifications), `refunds`; `calls` is the one place they call Alipay."""

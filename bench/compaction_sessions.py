"""Thirty agent sessions with planted facts, for the compaction retention bench.

Each scenario below is written by hand: what the user asks (with its constraint), a setting
found in a file the agent reads, an error and its fix, a decision, a follow-up and the next
step. `build_session` turns one into a realistic conversation: the planted turns, spread
among exploration the agent really does in such sessions (directory listings, file reads,
greps, test runs, acknowledgements), with tool calls and their results. Deterministic: the
filler is drawn from random.Random(index).

`facts` lists the exact strings a summary must contain for the fact to count as kept.
"""

from __future__ import annotations

import json
import random
from typing import Any

SCENARIOS: list[dict[str, Any]] = [
    {
        "agent": "coder",
        "ask": "Please fix BILL-4182: invoices in services/billing/invoice.py round VAT wrong for Sweden.",
        "constraint": "Do not change the public API, and keep the rounding to 2 decimals.",
        "cfg": ("config/billing.toml", "vat_rate_se = 0.25"),
        "err": "KeyError: 'SE-AB'",
        "fix": "Fixed it by adding the SE-AB region to REGION_CODES in services/billing/regions.py.",
        "decision": "We decided to use decimal.ROUND_HALF_EVEN instead of float rounding.",
        "followup": "Also link the fix in https://tracker.example.com/BILL-4182 before 2026-12-03.",
        "next": "Next I will add a regression test for invoice 88123.",
        "facts": [
            "BILL-4182",
            "services/billing/invoice.py",
            "2 decimals",
            "vat_rate_se = 0.25",
            "SE-AB",
            "ROUND_HALF_EVEN",
            "https://tracker.example.com/BILL-4182",
            "88123",
        ],
    },
    {
        "agent": "ops",
        "ask": "The nightly backup job on db-prod-03 failed again, can you find out why?",
        "constraint": "Never restart the primary during business hours (08:00-18:00 CET).",
        "cfg": ("/etc/pgbackrest/pgbackrest.conf", "repo1-retention-full=14"),
        "err": "ERROR: [082]: WAL segment 000000010000A2F300000041 was not archived before the 60000ms timeout",
        "fix": "Resolved by raising archive-timeout to 180 seconds in /etc/pgbackrest/pgbackrest.conf.",
        "decision": "We decided to move the backup window to 03:30 UTC to avoid the vacuum job.",
        "followup": "Put the postmortem in https://wiki.example.com/ops/pm-2026-11-21.",
        "next": "Next I will watch the 03:30 UTC run tonight and confirm the archive lag stays under 30 s.",
        "facts": [
            "db-prod-03",
            "08:00-18:00 CET",
            "repo1-retention-full=14",
            "000000010000A2F300000041",
            "180 seconds",
            "03:30 UTC",
            "https://wiki.example.com/ops/pm-2026-11-21",
        ],
    },
    {
        "agent": "coder",
        "ask": "Add rate limiting to the public API in api/middleware/ratelimit.py for ticket API-771.",
        "constraint": "Limit must be 600 requests per minute per API key, and it must not use a global lock.",
        "cfg": ("deploy/values.yaml", "redis_url: redis://cache-7.internal:6380/2"),
        "err": "redis.exceptions.ConnectionError: Error 111 connecting to cache-7.internal:6380. Connection refused.",
        "fix": "Fixed by pointing the test settings at the local Redis on port 6379 via REDIS_TEST_URL.",
        "decision": "We decided to use a sliding window counter with Redis INCR and EXPIRE instead of a token bucket.",
        "followup": "The product owner wants it live by 2026-12-10, see https://jira.example.com/browse/API-771.",
        "next": "Next I will load-test with k6 at 800 rps to check the 429 responses.",
        "facts": [
            "api/middleware/ratelimit.py",
            "API-771",
            "600 requests per minute",
            "redis://cache-7.internal:6380/2",
            "REDIS_TEST_URL",
            "sliding window",
            "2026-12-10",
            "800 rps",
        ],
    },
    {
        "agent": "research",
        "ask": "Compare the churn numbers in data/churn_q3.csv with the Q2 report.",
        "constraint": "Only use customers with at least 90 days of tenure.",
        "cfg": ("data/README.md", "rows: 48213"),
        "err": "pandas.errors.ParserError: Error tokenizing data. C error: Expected 14 fields in line 20871, saw 15",
        "fix": "Fixed by reading the file with quotechar='\"' and escapechar='\\\\' so the stray comma in the company name parses.",
        "decision": "The conclusion is that Q3 churn rose from 4.1% to 5.6%, driven by the Starter plan.",
        "followup": "Send the chart to maria.lopez@example.com by Friday.",
        "next": "Next I will split churn by acquisition channel for the Starter plan.",
        "facts": [
            "data/churn_q3.csv",
            "90 days",
            "rows: 48213",
            "line 20871",
            "4.1%",
            "5.6%",
            "maria.lopez@example.com",
            "Starter plan",
        ],
    },
    {
        "agent": "coder",
        "ask": "Upgrade the web app from React 17 to React 18 in frontend/package.json.",
        "constraint": "Keep bundle size below 350 KB gzipped.",
        "cfg": ("frontend/webpack.config.js", "maxAssetSize: 358400"),
        "err": "TypeError: ReactDOM.render is no longer supported in React 18. Use createRoot instead.",
        "fix": "Fixed by switching frontend/src/index.tsx to createRoot from react-dom/client.",
        "decision": "We decided to pin react-router-dom to 6.20.1 because 6.21 breaks our lazy routes.",
        "followup": "QA runs the regression suite on 2026-12-02.",
        "next": "Next I will remove the legacy enzyme tests in frontend/tests/legacy.",
        "facts": [
            "frontend/package.json",
            "350 KB",
            "maxAssetSize: 358400",
            "createRoot",
            "6.20.1",
            "2026-12-02",
            "frontend/tests/legacy",
        ],
    },
    {
        "agent": "support",
        "ask": "Customer ACME-2291 says their export to S3 bucket acme-exports-eu stopped on Nov 18.",
        "constraint": "Do not share internal hostnames with the customer.",
        "cfg": ("runbooks/exports.md", "export_batch_size: 5000"),
        "err": "botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the PutObject operation",
        "fix": "Resolved after the customer re-added the s3:PutObject permission for role arn:aws:iam::123456789012:role/exporter.",
        "decision": "We decided to add a daily permission check that emails the account owner.",
        "followup": "Reply in ticket #58841 and cc the account manager.",
        "next": "Next I will backfill the missing exports from Nov 18 to Nov 24.",
        "facts": [
            "ACME-2291",
            "acme-exports-eu",
            "Nov 18",
            "export_batch_size: 5000",
            "AccessDenied",
            "arn:aws:iam::123456789012:role/exporter",
            "#58841",
        ],
    },
    {
        "agent": "coder",
        "ask": "Make the CLI command `sessionctl prune` accept a --older-than flag.",
        "constraint": "The default must stay 30 days, and it should print a dry-run summary first.",
        "cfg": ("cli/defaults.py", "PRUNE_DEFAULT_DAYS = 30"),
        "err": "click.exceptions.BadParameter: '2w' is not a valid duration",
        "fix": "Fixed by parsing durations with parse_duration() in cli/durations.py, which accepts 2w and 14d.",
        "decision": "We decided to reject durations under 1 hour to avoid accidental mass deletes.",
        "followup": "Document it in docs/cli/prune.md.",
        "next": "Next I will add shell completion for the new flag.",
        "facts": [
            "sessionctl prune",
            "--older-than",
            "30 days",
            "PRUNE_DEFAULT_DAYS = 30",
            "parse_duration()",
            "1 hour",
            "docs/cli/prune.md",
        ],
    },
    {
        "agent": "ops",
        "ask": "Kubernetes pods in namespace payments-prod keep getting OOMKilled.",
        "constraint": "Memory limit may not exceed 2Gi per pod.",
        "cfg": ("k8s/payments/deployment.yaml", "memory: 1536Mi"),
        "err": "Last State: Terminated Reason: OOMKilled Exit Code: 137",
        "fix": "Resolved by setting JAVA_OPTS=-XX:MaxRAMPercentage=70 so the heap fits the container limit.",
        "decision": "We decided to raise the limit to 1792Mi and keep 3 replicas.",
        "followup": "Alert thresholds are tracked in https://grafana.example.com/d/payments-mem.",
        "next": "Next I will check the GC logs after 24 hours of traffic.",
        "facts": [
            "payments-prod",
            "2Gi",
            "memory: 1536Mi",
            "Exit Code: 137",
            "MaxRAMPercentage=70",
            "1792Mi",
            "https://grafana.example.com/d/payments-mem",
        ],
    },
    {
        "agent": "coder",
        "ask": "Write a migration that adds a tenant_id column to the orders table (DATA-310).",
        "constraint": "The migration must run online without locking orders for more than 2 seconds.",
        "cfg": ("migrations/env.py", "lock_timeout = '2s'"),
        "err": "psycopg.errors.LockNotAvailable: canceling statement due to lock timeout",
        "fix": "Fixed by adding the column as nullable first and backfilling in batches of 10000 rows.",
        "decision": "We decided to create the index with CREATE INDEX CONCURRENTLY in a separate migration 0042_orders_tenant_idx.",
        "followup": "The DBA review is on 2026-12-05 at 14:00.",
        "next": "Next I will write the backfill script scripts/backfill_tenant_id.py.",
        "facts": [
            "tenant_id",
            "DATA-310",
            "2 seconds",
            "lock_timeout = '2s'",
            "LockNotAvailable",
            "10000 rows",
            "0042_orders_tenant_idx",
            "scripts/backfill_tenant_id.py",
        ],
    },
    {
        "agent": "research",
        "ask": "Find out which embedding model gives the best recall on our FAQ set eval/faq_pairs.jsonl.",
        "constraint": "Only consider models that run on CPU under 200 ms per query.",
        "cfg": ("eval/config.yaml", "top_k: 5"),
        "err": "RuntimeError: CUDA error: no kernel image is available for execution on the device",
        "fix": "Fixed by forcing device='cpu' in eval/run_eval.py.",
        "decision": "The conclusion is that bge-small-en-v1.5 reaches recall@5 of 0.912 versus 0.874 for all-MiniLM-L6-v2.",
        "followup": "Results go to the shared sheet https://docs.example.com/sheets/faq-embeddings.",
        "next": "Next I will test a reranker on the 120 hardest queries.",
        "facts": [
            "eval/faq_pairs.jsonl",
            "200 ms",
            "top_k: 5",
            "device='cpu'",
            "bge-small-en-v1.5",
            "0.912",
            "https://docs.example.com/sheets/faq-embeddings",
            "120 hardest queries",
        ],
    },
    {
        "agent": "coder",
        "ask": "The login page at /auth/login returns 500 for users with an apostrophe in their email.",
        "constraint": "Do not log raw emails anywhere.",
        "cfg": ("auth/settings.py", "SESSION_TTL_SECONDS = 3600"),
        "err": 'sqlalchemy.exc.ProgrammingError: syntax error at or near "s"',
        "fix": "Fixed by replacing the f-string query in auth/users.py with a bound parameter.",
        "decision": "We decided to add a bandit check to CI so string-built SQL fails the build.",
        "followup": "Security wants a note in SEC-1207.",
        "next": "Next I will audit the other 14 raw queries that grep found in auth/.",
        "facts": [
            "/auth/login",
            "apostrophe",
            "SESSION_TTL_SECONDS = 3600",
            "ProgrammingError",
            "auth/users.py",
            "bandit",
            "SEC-1207",
            "14 raw queries",
        ],
    },
    {
        "agent": "ops",
        "ask": "Rotate the TLS certificate for api.example.org before it expires on 2026-12-14.",
        "constraint": "Zero downtime, and keep the old cert available for rollback for 7 days.",
        "cfg": ("infra/nginx/api.conf", "ssl_session_timeout 10m;"),
        "err": 'nginx: [emerg] cannot load certificate key "/etc/ssl/private/api-2026.key": PEM_read_bio_PrivateKey() failed',
        "fix": "Resolved by fixing the key file permissions to 0600 owned by root.",
        "decision": "We decided to switch to ECDSA P-256 certificates for the new chain.",
        "followup": "Update the expiry calendar entry for 2027-12-14.",
        "next": "Next I will verify OCSP stapling with openssl s_client.",
        "facts": [
            "api.example.org",
            "2026-12-14",
            "7 days",
            "ssl_session_timeout 10m",
            "/etc/ssl/private/api-2026.key",
            "0600",
            "ECDSA P-256",
            "2027-12-14",
        ],
    },
    {
        "agent": "coder",
        "ask": "Speed up the report endpoint GET /reports/monthly, it takes 9.4 s on large tenants.",
        "constraint": "Response must stay byte-identical to the current JSON.",
        "cfg": ("reports/queries.sql", "statement_timeout: 15000"),
        "err": "AssertionError: snapshot mismatch in tests/snapshots/monthly_report.json",
        "fix": "Fixed the snapshot mismatch by sorting line items by (sku, created_at) like the old code did.",
        "decision": "We decided to precompute daily aggregates in a materialized view reports.daily_totals.",
        "followup": "Target is under 800 ms p95 before the 2026-12-08 release.",
        "next": "Next I will schedule REFRESH MATERIALIZED VIEW every 15 minutes.",
        "facts": [
            "/reports/monthly",
            "9.4 s",
            "byte-identical",
            "statement_timeout: 15000",
            "monthly_report.json",
            "reports.daily_totals",
            "800 ms",
            "15 minutes",
        ],
    },
    {
        "agent": "support",
        "ask": "User 7731 cannot reset their password, the email never arrives.",
        "constraint": "Do not disable the rate limiter on the reset endpoint.",
        "cfg": ("mail/providers.yaml", "sender: no-reply@mail.example.net"),
        "err": "smtplib.SMTPRecipientsRefused: {'j.doe@contoso.test': (550, b'5.1.1 mailbox unavailable')}",
        "fix": "Resolved: the user had a typo in their address; support corrected it to j.doe@contoso.com.",
        "decision": "We decided to show the masked recipient address on the reset confirmation page.",
        "followup": "Close ticket #60217 once the user confirms.",
        "next": "Next I will ask the user to retry and watch the mail log.",
        "facts": [
            "7731",
            "rate limiter",
            "no-reply@mail.example.net",
            "550",
            "j.doe@contoso.com",
            "masked",
            "#60217",
        ],
    },
    {
        "agent": "coder",
        "ask": "Port the image resizer in workers/resize.py from PIL to pyvips.",
        "constraint": "Output must match within a PSNR of 40 dB, and memory per job below 256 MB.",
        "cfg": ("workers/settings.toml", "max_concurrency = 8"),
        "err": "pyvips.error.Error: unable to load from file heic_sample_03.heic",
        "fix": "Fixed by installing libheif and adding a fallback path through PIL for HEIC only.",
        "decision": "We decided to keep PIL for GIF animations because pyvips drops frame timing.",
        "followup": "Benchmarks go in bench/resize_results.md.",
        "next": "Next I will run the 5,000-image corpus in bench/corpus to compare throughput.",
        "facts": [
            "workers/resize.py",
            "pyvips",
            "40 dB",
            "256 MB",
            "max_concurrency = 8",
            "heic_sample_03.heic",
            "libheif",
            "bench/resize_results.md",
        ],
    },
    {
        "agent": "ops",
        "ask": "DNS for status.example.io points to the old load balancer.",
        "constraint": "TTL must be lowered to 60 seconds before the switch.",
        "cfg": ("dns/zones/example.io.zone", "status IN CNAME lb-old-2.example.io."),
        "err": "dig: couldn't get address for 'lb-new-1.example.io': not found",
        "fix": "Resolved once the A record for lb-new-1.example.io (203.0.113.42) propagated.",
        "decision": "We decided to keep lb-old-2 running until 2026-12-01 as a fallback.",
        "followup": "Announce the change in #infra-announce.",
        "next": "Next I will raise the TTL back to 3600 after 48 hours.",
        "facts": [
            "status.example.io",
            "60 seconds",
            "lb-old-2.example.io",
            "lb-new-1.example.io",
            "203.0.113.42",
            "2026-12-01",
            "3600",
        ],
    },
    {
        "agent": "coder",
        "ask": "Add OpenTelemetry tracing to the checkout service in checkout/app.py.",
        "constraint": "Sampling must be 10% in production and 100% in staging.",
        "cfg": ("checkout/otel.yaml", "endpoint: http://otel-collector.monitoring:4318"),
        "err": "opentelemetry.sdk.trace.export: Failed to export batch code: 404, reason: Not Found",
        "fix": "Fixed by adding the /v1/traces path to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.",
        "decision": "We decided to use ParentBased(TraceIdRatioBased(0.1)) so upstream decisions are honored.",
        "followup": "Dashboards live at https://tempo.example.com/checkout.",
        "next": "Next I will add spans around the payment provider call in checkout/payments.py.",
        "facts": [
            "checkout/app.py",
            "10%",
            "otel-collector.monitoring:4318",
            "404",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "TraceIdRatioBased(0.1)",
            "checkout/payments.py",
        ],
    },
    {
        "agent": "research",
        "ask": "Summarize the 2026 pricing survey in surveys/pricing_2026.xlsx for the board deck.",
        "constraint": "Keep it to 5 bullet points, no customer names.",
        "cfg": ("surveys/meta.json", "responses: 1284"),
        "err": "ValueError: Worksheet named 'Q4' not found",
        "fix": "Fixed by reading sheet 'Q4-final' instead.",
        "decision": "The conclusion is that 62% of respondents accept a price of $49 per seat.",
        "followup": "The board meeting is on 2026-12-11.",
        "next": "Next I will draft the slide with the willingness-to-pay curve.",
        "facts": [
            "surveys/pricing_2026.xlsx",
            "5 bullet points",
            "responses: 1284",
            "Q4-final",
            "62%",
            "$49",
            "2026-12-11",
        ],
    },
    {
        "agent": "coder",
        "ask": "Flaky test tests/test_scheduler.py::test_cron_dst fails about once in 20 runs.",
        "constraint": "Do not add sleeps to the test.",
        "cfg": ("scheduler/tz.py", "DEFAULT_TZ = 'Europe/Berlin'"),
        "err": "AssertionError: assert datetime(2026, 3, 29, 3, 0) == datetime(2026, 3, 29, 2, 0)",
        "fix": "Fixed by freezing time with a fixed fold=0 and computing the next run with zoneinfo instead of pytz.",
        "decision": "We decided to drop pytz from the scheduler entirely.",
        "followup": "Remove the @flaky marker tracked in QA-88.",
        "next": "Next I will run the test 500 times with pytest-repeat to confirm.",
        "facts": [
            "tests/test_scheduler.py::test_cron_dst",
            "sleeps",
            "DEFAULT_TZ = 'Europe/Berlin'",
            "2026, 3, 29",
            "zoneinfo",
            "pytz",
            "QA-88",
            "500 times",
        ],
    },
    {
        "agent": "ops",
        "ask": "Disk on build-runner-12 is at 97% again.",
        "constraint": "Keep at least the last 3 Docker images per project.",
        "cfg": ("/etc/docker/daemon.json", '"data-root": "/mnt/docker"'),
        "err": "write /mnt/docker/tmp/GetImageBlob123: no space left on device",
        "fix": "Resolved by pruning dangling images, which freed 184 GB.",
        "decision": "We decided to add a weekly docker system prune cron at Sunday 04:00.",
        "followup": "Capacity planning notes are in https://wiki.example.com/ci/runners.",
        "next": "Next I will add a disk alert at 85% for all build runners.",
        "facts": [
            "build-runner-12",
            "97%",
            "3 Docker images",
            "/mnt/docker",
            "no space left on device",
            "184 GB",
            "Sunday 04:00",
            "85%",
        ],
    },
    {
        "agent": "coder",
        "ask": "Implement CSV import for contacts in importers/contacts_csv.py (CRM-512).",
        "constraint": "Must handle files up to 200 MB streaming, without loading them in memory.",
        "cfg": ("importers/limits.py", "MAX_ROWS = 2_000_000"),
        "err": "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9 in position 1022",
        "fix": "Fixed by detecting the encoding with charset-normalizer on the first 64 KB.",
        "decision": "We decided to reject rows without an email instead of importing them half-filled.",
        "followup": "Sales wants it before 2026-12-15.",
        "next": "Next I will add a progress callback for the UI.",
        "facts": [
            "importers/contacts_csv.py",
            "CRM-512",
            "200 MB",
            "MAX_ROWS = 2_000_000",
            "0xe9",
            "charset-normalizer",
            "2026-12-15",
        ],
    },
    {
        "agent": "support",
        "ask": "Webhook deliveries to https://hooks.globex.test/sessionscope fail with timeouts.",
        "constraint": "We cannot raise our delivery timeout above 10 seconds.",
        "cfg": ("webhooks/retry.yaml", "max_attempts: 8"),
        "err": "httpx.ReadTimeout: timed out after 10.0s",
        "fix": "Resolved after Globex moved their handler to respond 202 first and process asynchronously.",
        "decision": "We decided to add exponential backoff with jitter capped at 30 minutes.",
        "followup": "Customer contact is ops@globex.test.",
        "next": "Next I will replay the 312 failed deliveries from the dead-letter queue.",
        "facts": [
            "https://hooks.globex.test/sessionscope",
            "10 seconds",
            "max_attempts: 8",
            "ReadTimeout",
            "202",
            "30 minutes",
            "ops@globex.test",
            "312",
        ],
    },
    {
        "agent": "coder",
        "ask": "Replace the hand-written retry loop in clients/payments_client.py with tenacity.",
        "constraint": "Keep at most 5 attempts and never retry on 4xx responses.",
        "cfg": ("clients/config.py", "PAYMENTS_TIMEOUT = 12.5"),
        "err": "tenacity.RetryError: RetryError[<Future at 0x7f3a state=finished raised HTTPStatusError>]",
        "fix": "Fixed by unwrapping RetryError with reraise=True so callers still see HTTPStatusError.",
        "decision": "We decided to use wait_exponential(multiplier=0.5, max=8).",
        "followup": "Mention it in the changelog for v3.7.0.",
        "next": "Next I will delete the old helper clients/retry_utils.py.",
        "facts": [
            "clients/payments_client.py",
            "tenacity",
            "5 attempts",
            "PAYMENTS_TIMEOUT = 12.5",
            "reraise=True",
            "wait_exponential(multiplier=0.5, max=8)",
            "v3.7.0",
            "clients/retry_utils.py",
        ],
    },
    {
        "agent": "ops",
        "ask": "Set up log retention for the audit bucket logs-audit-prod.",
        "constraint": "Audit logs must be kept for 400 days and be immutable.",
        "cfg": ("terraform/s3.tf", "object_lock_enabled = true"),
        "err": "Error: creating S3 Bucket Lifecycle Configuration: InvalidArgument: 'Days' in Expiration action must be greater than 'Days' in Transition action",
        "fix": "Fixed by moving the GLACIER transition to day 90 and expiration to day 400.",
        "decision": "We decided to use COMPLIANCE mode object lock rather than GOVERNANCE.",
        "followup": "The auditor review is scheduled for 2027-01-20.",
        "next": "Next I will run terraform plan against the staging account 210987654321.",
        "facts": [
            "logs-audit-prod",
            "400 days",
            "object_lock_enabled = true",
            "InvalidArgument",
            "day 90",
            "COMPLIANCE",
            "2027-01-20",
            "210987654321",
        ],
    },
    {
        "agent": "coder",
        "ask": "Our GraphQL resolver for Order.items does N+1 queries (PERF-233).",
        "constraint": "Keep the schema unchanged for mobile clients.",
        "cfg": ("graphql/settings.py", "MAX_QUERY_DEPTH = 7"),
        "err": "graphql.error.GraphQLError: Cannot return null for non-nullable field OrderItem.sku",
        "fix": "Fixed by making the DataLoader return an empty list instead of None for orders without items.",
        "decision": "We decided to batch with a DataLoader keyed by order_id.",
        "followup": "Mobile release 5.12 ships on 2026-12-09.",
        "next": "Next I will add a query-count assertion test with max 3 queries.",
        "facts": [
            "Order.items",
            "PERF-233",
            "MAX_QUERY_DEPTH = 7",
            "OrderItem.sku",
            "DataLoader",
            "order_id",
            "2026-12-09",
            "3 queries",
        ],
    },
    {
        "agent": "research",
        "ask": "Estimate the cost of running our agent fleet on gpt-4o-mini instead of gpt-4o.",
        "constraint": "Assume 1.2 million requests per month and the current prompt sizes.",
        "cfg": ("usage/october.csv", "avg_input_tokens: 3412"),
        "err": "KeyError: 'cached_tokens'",
        "fix": "Fixed by treating missing cached_tokens as 0 for requests before the caching rollout.",
        "decision": "The conclusion is that gpt-4o-mini would cost about $1,870 per month versus $31,200.",
        "followup": "Share it with finance@example.com.",
        "next": "Next I will measure the quality drop on the 250-case eval set.",
        "facts": [
            "gpt-4o-mini",
            "1.2 million requests",
            "avg_input_tokens: 3412",
            "cached_tokens",
            "$1,870",
            "$31,200",
            "finance@example.com",
            "250-case",
        ],
    },
    {
        "agent": "coder",
        "ask": "Feature flag new_checkout_flow should be on for 5% of users in EU only.",
        "constraint": "Must be sticky per user id, not per session.",
        "cfg": ("flags/flags.yaml", "new_checkout_flow: {rollout: 0}"),
        "err": "jsonschema.exceptions.ValidationError: 'eu' is not one of ['EU', 'US', 'APAC']",
        "fix": "Fixed by normalizing region codes to upper case in flags/loader.py.",
        "decision": "We decided to hash user_id with murmur3 for bucketing.",
        "followup": "Rollout review with the PM on Dec 4.",
        "next": "Next I will add a kill switch endpoint /admin/flags/new_checkout_flow/off.",
        "facts": [
            "new_checkout_flow",
            "5%",
            "sticky per user id",
            "rollout: 0",
            "flags/loader.py",
            "murmur3",
            "Dec 4",
            "/admin/flags/new_checkout_flow/off",
        ],
    },
    {
        "agent": "ops",
        "ask": "Upgrade the PostgreSQL cluster pg-main from 14 to 16.",
        "constraint": "Maximum downtime 15 minutes, on a Sunday.",
        "cfg": ("ansible/group_vars/pg.yml", "shared_buffers: 16GB"),
        "err": 'pg_upgrade: could not load library "$libdir/pg_partman_bgw": No such file',
        "fix": "Resolved by installing postgresql-16-partman before running pg_upgrade --link.",
        "decision": "We decided to use pg_upgrade --link instead of dump and restore.",
        "followup": "The window is 2026-12-13 from 05:00 to 05:15 UTC.",
        "next": "Next I will rehearse the upgrade on the staging replica pg-stage-2.",
        "facts": [
            "pg-main",
            "15 minutes",
            "shared_buffers: 16GB",
            "pg_partman_bgw",
            "postgresql-16-partman",
            "--link",
            "2026-12-13",
            "pg-stage-2",
        ],
    },
    {
        "agent": "coder",
        "ask": "Add pagination to the /v2/projects endpoint, it returns 20k rows at once.",
        "constraint": "Use cursor pagination, not offset, with a default page size of 50.",
        "cfg": ("api/v2/limits.py", "MAX_PAGE_SIZE = 500"),
        "err": "ValueError: invalid cursor 'eyJpZCI6IDQyfQ'",
        "fix": "Fixed by using urlsafe base64 without padding for cursors.",
        "decision": "We decided to order by (updated_at, id) so the cursor is stable.",
        "followup": "Mobile team needs the new contract by 2026-12-06.",
        "next": "Next I will update openapi/v2.yaml with the next_cursor field.",
        "facts": [
            "/v2/projects",
            "20k rows",
            "page size of 50",
            "MAX_PAGE_SIZE = 500",
            "eyJpZCI6IDQyfQ",
            "urlsafe base64",
            "(updated_at, id)",
            "openapi/v2.yaml",
        ],
    },
    {
        "agent": "support",
        "ask": "Invoice INV-2026-00981 was charged twice for customer Initech.",
        "constraint": "Refund must go back to the original card, not as credit.",
        "cfg": ("billing/stripe.yaml", "idempotency_window_hours: 24"),
        "err": "stripe.error.InvalidRequestError: Charge ch_3PzQ8x2eZvKYlo2C1 has already been refunded",
        "fix": "Resolved: the second charge ch_3PzQ9a7fXwLMno4D2 was the duplicate and was refunded instead.",
        "decision": "We decided to add an idempotency key derived from the invoice number to every charge.",
        "followup": "Tell the customer through ticket #61004 that the refund takes 5-10 business days.",
        "next": "Next I will check whether other invoices from 2026-11-20 were double charged.",
        "facts": [
            "INV-2026-00981",
            "original card",
            "idempotency_window_hours: 24",
            "ch_3PzQ8x2eZvKYlo2C1",
            "ch_3PzQ9a7fXwLMno4D2",
            "#61004",
            "5-10 business days",
            "2026-11-20",
        ],
    },
]


def _filler_file(rng: random.Random, path: str) -> str:
    names = ["load", "parse", "validate", "render", "flush", "retry", "connect", "close", "handle", "build"]
    lines = [
        f'"""{path}: module of the service."""',
        "",
        "import logging",
        "",
        "log = logging.getLogger(__name__)",
        "",
    ]
    for _ in range(rng.randint(6, 12)):
        name = f"{rng.choice(names)}_{rng.choice(['item', 'batch', 'row', 'event', 'request'])}"
        lines += [
            f"def {name}(value, *, limit={rng.randint(1, 500)}):",
            "    if value is None:",
            "        return None",
        ]
        lines += ["    for i in range(min(len(value), limit)):", f"        log.debug('step %s of {name}', i)"]
        lines += ["    return value", ""]
    return "\n".join(lines)


def _filler_exchange(rng: random.Random, tag: str, n: int) -> list[dict[str, Any]]:
    """One exploratory step: the assistant narrates, calls a tool, reads the result."""
    kind = rng.choice(["ls", "read", "grep", "test", "read", "chat"])
    call_id = f"call_{tag}_{n}"
    base = rng.choice(["src/core", "src/utils", "lib/common", "app/handlers", "pkg/internal"])
    if kind == "chat":
        return [
            {
                "role": "assistant",
                "content": rng.choice(
                    [
                        "Let me look at how this is wired before changing anything.",
                        "I'm checking the surrounding code to understand the flow.",
                        "This part looks fine, moving on to the next module.",
                    ]
                ),
            },
            {"role": "user", "content": rng.choice(["ok", "sounds good", "go ahead", "thanks, continue"])},
        ]
    if kind == "ls":
        args, name = {"path": base}, "list_dir"
        out = "\n".join(
            f"{base}/{w}_{i}.py"
            for i, w in enumerate(
                rng.sample(
                    [
                        "cache",
                        "queue",
                        "models",
                        "views",
                        "helpers",
                        "schema",
                        "tasks",
                        "events",
                        "auth",
                        "io",
                    ],
                    8,
                )
            )
        )
    elif kind == "read":
        path = f"{base}/{rng.choice(['helpers', 'models', 'tasks', 'events'])}.py"
        args, name, out = {"path": path}, "read_file", _filler_file(rng, path)
    elif kind == "grep":
        word = rng.choice(["TODO", "timeout", "retry", "deprecated"])
        args, name = {"pattern": word, "path": base}, "grep"
        out = "\n".join(
            f"{base}/mod_{i}.py:{rng.randint(10, 400)}:    # {word}: revisit later" for i in range(12)
        )
    else:
        args, name = {"cmd": f"pytest {base.replace('src/', 'tests/')} -q"}, "shell"
        dots = "".join(rng.choice("....s") for _ in range(60))
        passed = rng.randint(40, 300)
        out = f"{dots}\n{dots}\n{passed} passed, {rng.randint(0, 5)} skipped in {rng.randint(2, 40)}.{rng.randint(10, 99)}s"
    narration = rng.choice(
        ["Checking this next.", "Looking at the related code.", "Running this to see the current state."]
    )
    return [
        {
            "role": "assistant",
            "content": narration,
            "tool_calls": [{"id": call_id, "name": name, "arguments": json.dumps(args)}],
        },
        {"role": "tool", "tool_call_id": call_id, "tool_name": name, "content": out, "is_error": False},
    ]


def build_session(index: int, spec: dict[str, Any]) -> list[dict[str, Any]]:
    rng = random.Random(index)
    tag = f"s{index}"
    msgs: list[dict[str, Any]] = []
    counter = iter(range(10_000))

    def filler(k: int) -> None:
        for _ in range(k):
            msgs.extend(_filler_exchange(rng, tag, next(counter)))

    cfg_path, cfg_line = spec["cfg"]
    msgs.append({"role": "user", "content": f"{spec['ask']} {spec['constraint']}"})
    filler(rng.randint(3, 6))
    msgs.append(
        {
            "role": "assistant",
            "content": f"Reading {cfg_path} for the current settings.",
            "tool_calls": [
                {"id": f"cfg_{tag}", "name": "read_file", "arguments": json.dumps({"path": cfg_path})}
            ],
        }
    )
    cfg_text = _filler_file(rng, cfg_path).splitlines()
    cfg_text.insert(len(cfg_text) // 2, cfg_line)
    msgs.append(
        {
            "role": "tool",
            "tool_call_id": f"cfg_{tag}",
            "tool_name": "read_file",
            "content": "\n".join(cfg_text),
            "is_error": False,
        }
    )
    filler(rng.randint(3, 6))
    msgs.append(
        {
            "role": "assistant",
            "content": "Running the checks to reproduce the problem.",
            "tool_calls": [
                {"id": f"err_{tag}", "name": "shell", "arguments": json.dumps({"cmd": "make check"})}
            ],
        }
    )
    trace = "Traceback (most recent call last):\n" + "\n".join(
        f'  File "/app/{p}.py", line {rng.randint(10, 900)}, in {p}'
        for p in ["main", "runner", "worker", "core"]
    )
    msgs.append(
        {
            "role": "tool",
            "tool_call_id": f"err_{tag}",
            "tool_name": "shell",
            "is_error": True,
            "content": f"{trace}\n{spec['err']}\nexit code 1",
        }
    )
    filler(rng.randint(1, 3))
    msgs.append({"role": "assistant", "content": f"{spec['fix']} I re-ran the checks and they pass."})
    msgs.append({"role": "user", "content": "Good. What approach do you suggest for the rest?"})
    filler(rng.randint(2, 4))
    msgs.append(
        {"role": "assistant", "content": f"{spec['decision']} It keeps the change small and easy to review."}
    )
    msgs.append({"role": "user", "content": spec["followup"]})
    filler(rng.randint(3, 6))
    msgs.append({"role": "assistant", "content": f"Done with the main change. {spec['next']}"})
    return msgs


def all_sessions() -> list[dict[str, Any]]:
    return [
        {"agent": s["agent"], "facts": s["facts"], "messages": build_session(i, s)}
        for i, s in enumerate(SCENARIOS)
    ]

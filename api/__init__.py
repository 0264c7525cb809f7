"""jobgate's HTTP job API (`jobgate.api`): the seed's job API at `/api/jobs` and Ray's Jobs API
at `/ray/api/...`, both writing and reading `Job` custom resources. See README.md here."""

#!/usr/bin/env bash
# segsync by hand, from accounts to records written, against the sandbox emulators. Run it in the
# folder where `segsync sandbox start --accounts-csv sandbox-accounts.csv > sandbox.json` runs
# (README.md, "To drive it by hand"); the database is $SEGSYNC_DATABASE_URL (default: segsync.db
# here). README.md shows these commands and tests/worker/cli/test_sandbox.py runs this file, so
# the two cannot drift apart.
set -euo pipefail

# sandbox KEY...: a value from sandbox.json's first line (an object's keys, one a line).
sandbox() {
    python -c 'import json, sys
value = json.loads(open("sandbox.json").readline())
for key in sys.argv[1:]:
    value = value[key]
print("\n".join(value) if isinstance(value, dict) else value)' "$@"
}

segsync db upgrade
segsync accounts import sandbox-accounts.csv
segsync segments create "Sandbox companies" --filter 'name contains "Company"'
segsync publish "Sandbox companies" --use enrichment --yes
# Connection secrets are encrypted with SEGSYNC_SECRET_KEY. Without one, a key is made once and
# kept in segsync.key: later commands need it too (export SEGSYNC_SECRET_KEY=$(cat segsync.key)).
if [ -z "${SEGSYNC_SECRET_KEY:-}" ]; then
    [ -e segsync.key ] || (umask 077 && segsync connections keygen > segsync.key)
    SEGSYNC_SECRET_KEY=$(cat segsync.key)
    export SEGSYNC_SECRET_KEY
fi
ca="ca_bundle=$(sandbox ca_bundle)"
segsync connections add sandbox-salesforce --system salesforce --set "$ca" \
    --set auth=password --set "login_url=$(sandbox salesforce login_url)" \
    --set "username=$(sandbox salesforce username)" \
    --secret "password=$(sandbox salesforce password)" \
    --secret "security_token=$(sandbox salesforce security_token)"
segsync connections add sandbox-hubspot --system hubspot --set "$ca" \
    --set "base_url=$(sandbox hubspot base_url)" \
    --secret "access_token=$(sandbox hubspot access_token)"
segsync connections add sandbox-marketo --system marketo --set "$ca" \
    --set "base_url=$(sandbox marketo base_url)" --set "client_id=$(sandbox marketo client_id)" \
    --secret "client_secret=$(sandbox marketo client_secret)"
segsync connections add sandbox-pardot --system pardot --set "$ca" \
    --set "base_url=$(sandbox pardot base_url)" \
    --set "business_unit_id=$(sandbox pardot business_unit_id)" \
    --secret "access_token=$(sandbox pardot access_token)"
segsync connections add sandbox-eloqua --system eloqua --set "$ca" \
    --set "login_url=$(sandbox eloqua login_url)" --set "site=$(sandbox eloqua site)" \
    --set "username=$(sandbox eloqua username)" --secret "password=$(sandbox eloqua password)"
# An orchestration per object the sandbox has, writing the field its "fields" names, and a run.
for system in salesforce hubspot marketo pardot eloqua; do
    for object in $(sandbox "$system" fields); do
        segsync orchestrations create "$system $object" --connection "sandbox-$system" \
            --object "$object" --field "$(sandbox "$system" fields "$object")"
        segsync sync "$system $object"
    done
done
segsync runs

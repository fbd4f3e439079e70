#!/usr/bin/env bash
# azure-connect: connects an Azure subscription to Spot in one command. Paste the command the
# wizard gives you into Azure Cloud Shell (bash), or any shell signed in with `az login`:
#
#   curl -fsSL https://<api>/setup/scripts/azure-connect.sh | bash -s -- --token <t> --api https://<api>
#
# It checks everything before it writes anything, then makes (or finds, when run again) exactly:
# one app registration and its service principal, one federated credential trusting Spot's
# issuer for this connection (no secret anywhere; --client-secret adds a 24-month secret instead
# and sends it to Spot's API only), the custom role with Spot's actions, and its assignment on the
# subscription (or, with --management-group, at the group: every subscription below it). Spot's
# backend then validates the connection against Azure and says "connected".
#
# Options:
#   --token T            the setup token of the command (required)
#   --api URL            Spot's azure-connect API (required)
#   --subscription ID    the subscription to connect (default: the connection's own, else az's current one)
#   --management-group G a management group instead (its ID): every subscription below it, and
#                        those added later (default for a connection whose scope is a group)
#   --client-secret      a client secret instead of a federated credential
#   --dry-run            print what would be written; write nothing (in Azure or at Spot)
#   --uninstall          remove what this script made (the wizard's uninstall command says it)
#   --yes                grant without asking (automation); otherwise it shows whom it grants
#                        what, and asks on the terminal before its first write
#
# Exit codes:
#   0  connected (--dry-run: the plan printed; --uninstall: removed)
#   2  usage: a missing or unknown option, a missing tool (az, curl), or not granted (answered
#      anything but yes, or no terminal to ask on and no --yes)
#   3  the setup token was refused: expired (30 minutes), replaced by a newer command, spent, or
#      made for the other purpose (connect or uninstall)
#   4  a check failed before anything was written (sign-in, tenant, subscription or group, permissions)
#   5  an Azure write failed (the message says which and why; run the same command again to resume)
#   6  Spot's validation failed: the diagnosis (step, code, what to do) is printed
#   7  Spot's API could not be reached or answered something unexpected
#
# It needs bash, az and curl, nothing else: every Azure call goes through az (endpoints from
# `az cloud show`), answers from Spot's API are lines of key=value.
set -uo pipefail

SCRIPT_VERSION=1
TOKEN="" API="" SUBSCRIPTION="" MANAGEMENT_GROUP="" CLIENT_SECRET=0 DRY_RUN=0 UNINSTALL=0 YES=0
AZ_CALLS=0
STARTED=$(date +%s)

usage() {
    sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]:-/dev/null}" 2>/dev/null | sed -n 's/^# \{0,1\}//p' >&2 || true
    echo "usage: azure-connect.sh --token T --api URL [--subscription ID | --management-group G] [--client-secret] [--dry-run] [--uninstall] [--yes]" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --token) TOKEN=${2:-}; shift 2 || usage ;;
        --api) API=${2:-}; shift 2 || usage ;;
        --subscription) SUBSCRIPTION=${2:-}; shift 2 || usage ;;
        --management-group) MANAGEMENT_GROUP=${2:-}; shift 2 || usage ;;
        --client-secret) CLIENT_SECRET=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        --yes) YES=1; shift ;;
        -h | --help) usage ;;
        *) echo "error: unknown option $1" >&2; usage ;;
    esac
done
if [ -z "$TOKEN" ] || [ -z "$API" ]; then usage; fi
if [ -n "$SUBSCRIPTION" ] && [ -n "$MANAGEMENT_GROUP" ]; then
    echo "error: --subscription or --management-group, not both" >&2
    usage
fi
API=${API%/}
for tool in az curl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is needed (Azure Cloud Shell has it)" >&2; exit 2; }
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
umask 077
# The token goes in a header read from a file: never on curl's command line.
printf 'Authorization: Bearer %s\n' "$TOKEN" >"$WORK/auth"

say() { printf '%s\n' "$*"; }
phase() { printf '==> %s: %s\n' "$1" "$2"; }

# --- Spot's API -----------------------------------------------------------------------------

declare -A R
# api METHOD PATH [BODY-FILE]: fills R from the answer's key=value lines; returns 0 on 2xx,
# 1 otherwise (R has the problem: code, title, detail, step, retryable, ...).
api() {
    local method=$1 path=$2 body=${3:-} status
    local args=(-sS -o "$WORK/answer" -w '%{http_code}' -X "$method" -H @"$WORK/auth" -H 'Accept: text/plain')
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary @"$body")
    R=()
    if ! status=$(curl "${args[@]}" "$API$path" 2>"$WORK/curl.err"); then
        echo "error: Spot's API at $API could not be reached: $(cat "$WORK/curl.err")" >&2
        exit 7
    fi
    while IFS= read -r line; do
        [ -n "$line" ] && R[${line%%=*}]=${line#*=}
    done <"$WORK/answer"
    R[http_status]=$status
    case "$status" in
        2??) return 0 ;;
        401)
            echo "error: ${R[detail]:-the setup token was refused}" >&2
            exit 3
            ;;
        *) return 1 ;;
    esac
}

# report PHASE [extra JSON members]: progress for the page (never in a dry run).
report() {
    local phase=$1 extra=${2:-}
    [ "$DRY_RUN" = 1 ] && return 0
    printf '{"phase":"%s","scriptVersion":"%s"%s}' "$phase" "$SCRIPT_VERSION" "$extra" >"$WORK/report.json"
    api POST /setup/report "$WORK/report.json" || true
}

# fail EXIT PHASE CODE MESSAGE: reports the failure, prints the fix, exits.
fail() {
    local exit_code=$1 at=$2 code=$3
    shift 3
    report failed ",\"failure\":{\"phase\":\"$at\",\"code\":\"$code\"}"
    echo "error [$at/$code]: $*" >&2
    exit "$exit_code"
}

# --- az ----------------------------------------------------------------------------------------

# azq ARGS...: runs az; OUT has stdout (trimmed), ERR stderr; returns az's exit code.
azq() {
    AZ_CALLS=$((AZ_CALLS + 1))
    local rc=0
    az "$@" --only-show-errors >"$WORK/out" 2>"$WORK/err" || rc=$?
    OUT=$(tr -d '\r' <"$WORK/out")
    ERR=$(cat "$WORK/err")
    return $rc
}

# azlist URL EXPR: every page of a collection that az rest reads (az rest follows neither ARM's
# nextLink nor Graph's @odata.nextLink; Azure pages every list, Graph at 100 entries or fewer):
# OUT gets EXPR (JMESPath on one entry) of each entry, one line each.
azlist() {
    local url=$1 expr=$2 rows="" pages=0
    while [ -n "$url" ]; do
        pages=$((pages + 1))
        [ "$pages" -le 200 ] || { ERR="more than 200 pages at ${1%%\?*}"; return 1; }
        # The first line is the link to the next page (empty on the last), then the entries.
        azq rest --method get --url "$url" --query "[[\"@odata.nextLink\" || nextLink || ''], value[].$expr][]" -o tsv ||
            return 1
        url=${OUT%%$'\n'*}
        [ "$OUT" = "$url" ] || rows+=${OUT#*$'\n'}$'\n'
        # A next page only where the first came from (az rest would send it a token).
        case "$url" in "" | "$ARM"/* | "$GRAPH"/*) ;; *) ERR="a next page outside Azure: ${url%%\?*}"; return 1 ;; esac
    done
    OUT=${rows%$'\n'}
}

# azw ARGS...: an Azure write: printed and skipped in a dry run.
azw() {
    if [ "$DRY_RUN" = 1 ]; then
        say "    would run: az $*"
        OUT="" ERR=""
        return 0
    fi
    azq "$@"
}

# --- the plan ----------------------------------------------------------------------------------

api GET /setup/plan || { echo "error: the plan could not be read: ${R[detail]:-HTTP ${R[http_status]}}" >&2; exit 7; }
declare -A PLAN
for k in "${!R[@]}"; do PLAN[$k]=${R[$k]}; done
say "azure-connect $SCRIPT_VERSION: connection ${PLAN[connection]} (${PLAN[status]})"
# A command is made to connect or to uninstall, never both.
if [ "${PLAN[purpose]:-connect}" = uninstall ]; then
    UNINSTALL=1
elif [ "$UNINSTALL" = 1 ]; then
    echo "error: this command connects; to uninstall, make an uninstall command in the wizard" >&2
    exit 3
fi

# --- checks: nothing is written before every one passes -------------------------------------

phase checks "sign-in, tenant, subscription or group, permissions"
azq account show --query "[tenantId, user.type, user.name, id]" -o tsv ||
    fail 4 checks not-signed-in "az is not signed in: run 'az login' (Cloud Shell signs you in), then run the command again"
mapfile -t SIGNED_IN <<<"$OUT"
TENANT=${SIGNED_IN[0]:-} USER_TYPE=${SIGNED_IN[1]:-} USER_NAME=${SIGNED_IN[2]:-} CURRENT_SUB=${SIGNED_IN[3]:-}
say "    signed in as $USER_NAME ($USER_TYPE) in tenant $TENANT"
WANT_TENANT=${PLAN[tenant_id]:-}
if [ -n "$WANT_TENANT" ] && [[ "$WANT_TENANT" =~ ^[0-9a-fA-F-]{36}$ ]] && [ "${WANT_TENANT,,}" != "${TENANT,,}" ]; then
    fail 4 checks wrong-tenant "the connection is for tenant $WANT_TENANT but az is signed in to $TENANT: run 'az login --tenant $WANT_TENANT'"
fi

azq cloud show --query "endpoints.[resourceManager, microsoftGraphResourceId]" -o tsv ||
    fail 4 checks no-cloud "az cloud show failed: $ERR"
mapfile -t ENDPOINTS <<<"$OUT"
ARM=${ENDPOINTS[0]%/} GRAPH=${ENDPOINTS[1]%/}

# A management group: asked for, or the connection's own (unless a subscription is asked for).
MG=$MANAGEMENT_GROUP
if [ -z "$MG" ] && [ -z "$SUBSCRIPTION" ]; then MG=${PLAN[management_group_id]:-}; fi
if [ -n "$MG" ]; then
    [[ "$MG" =~ ^[A-Za-z0-9_().-]{0,89}[A-Za-z0-9_()-]$ ]] ||
        fail 4 checks management-group-not-found "'$MG' is not a management group ID: pass --management-group with the group's ID (Azure portal > Management groups > the group > ID), not its display name"
    azq rest --method get --url "$ARM/providers/Microsoft.Management/managementGroups/$MG?api-version=2021-04-01" \
        --query "[properties.tenantId, properties.displayName]" -o tsv ||
        fail 4 checks management-group-not-found "management group $MG is not visible to $USER_NAME: pass the group's ID (not its display name), or sign in with an account that may read it ('az account management-group list' shows what you see)"
    mapfile -t FOUND_MG <<<"$OUT"
    MG_TENANT=${FOUND_MG[0]:-} MG_NAME=${FOUND_MG[1]:-$MG}
    [ -z "$MG_TENANT" ] || [ "${MG_TENANT,,}" = "${TENANT,,}" ] ||
        fail 4 checks wrong-tenant "management group $MG belongs to tenant $MG_TENANT: run 'az login --tenant $MG_TENANT'"
    say "    management group $MG_NAME ($MG)"
    TARGET="management group $MG_NAME ($MG)" TARGET_QUERY="managementGroup=$MG" TARGET_KIND="management group"
    TARGET_JSON="\"managementGroupId\":\"$MG\""
else
    SUB=${SUBSCRIPTION:-${PLAN[subscription_id]:-$CURRENT_SUB}}
    [[ "$SUB" =~ ^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$ ]] ||
        fail 4 checks subscription-not-found "'$SUB' is not a subscription id (a GUID): pass --subscription ID"
    # Its state now (ARM), not as az remembers it from sign-in.
    azq rest --method get --url "$ARM/subscriptions/$SUB?api-version=2022-12-01" --query "[state, tenantId, displayName]" -o tsv ||
        fail 4 checks subscription-not-found "subscription $SUB is not visible to $USER_NAME: check the id, or sign in with an account that has access ('az account list --all' shows what you see)"
    mapfile -t FOUND_SUB <<<"$OUT"
    SUB_STATE=${FOUND_SUB[0]:-} SUB_TENANT=${FOUND_SUB[1]:-} SUB_NAME=${FOUND_SUB[2]:-}
    [ "$SUB_STATE" = Enabled ] ||
        fail 4 checks subscription-not-enabled "subscription $SUB is $SUB_STATE: only an Enabled subscription can be connected (re-enable it in the portal: Subscriptions > $SUB_NAME)"
    [ "${SUB_TENANT,,}" = "${TENANT,,}" ] ||
        fail 4 checks wrong-tenant "subscription $SUB belongs to tenant $SUB_TENANT: run 'az login --tenant $SUB_TENANT'"
    say "    subscription $SUB_NAME ($SUB) is Enabled"
    TARGET="subscription $SUB_NAME ($SUB)" TARGET_QUERY="subscription=$SUB" TARGET_KIND=subscription
    TARGET_JSON="\"subscriptionId\":\"$SUB\""
fi

api GET "/setup/plan?$TARGET_QUERY" || { echo "error: the plan could not be read: ${R[detail]:-}" >&2; exit 7; }
for k in "${!R[@]}"; do PLAN[$k]=${R[$k]}; done
ROLE_NAME=${PLAN[role_name]} ROLE_SCOPE=${PLAN[role_scope]} APP_NAME=${PLAN[app_name]}

# The signed-in principal's object id: an app this script makes has it as its only owner.
if [ "$USER_TYPE" = user ]; then
    azq ad signed-in-user show --query id -o tsv
else
    azq ad sp show --id "$USER_NAME" --query id -o tsv
fi || fail 4 checks graph-unreadable "could not read the signed-in principal in Microsoft Graph: $ERR"
ME=$OUT

# Never adopt an app this script did not make: an app bearing the name is ours only if it carries
# the plan's notes (written at creation) and the signed-in principal is its only owner. Anyone who
# sees the command sees the name, and in most tenants any member may register an app under it;
# adopting theirs would hand its owner Spot's role.
azq ad app list --filter "displayName eq '$APP_NAME'" --query "[].[appId, id, notes]" -o tsv ||
    fail 4 checks graph-unreadable "could not read app registrations: $ERR"
APP_ID="" APP_OBJECT_ID="" FOREIGN=""
while IFS=$'\t' read -r found_app found_object found_notes; do
    [ -n "$found_app" ] || continue
    azlist "$GRAPH/v1.0/applications/$found_object/owners" id ||
        fail 4 checks graph-unreadable "could not read the owners of app $found_app: $ERR"
    if [ "$found_notes" = "${PLAN[app_notes]}" ] && [ "$OUT" = "$ME" ] && [ -z "$APP_ID" ]; then
        APP_ID=$found_app APP_OBJECT_ID=$found_object
    else
        FOREIGN="$FOREIGN $found_app"
    fi
done <<<"$OUT"
if [ -n "$FOREIGN" ]; then
    fail 4 checks app-name-taken "an app registration named $APP_NAME that this command did not make already exists (app id:$FOREIGN). azure-connect never takes over an app it did not make: whoever owns it could act with Spot's role. If you made it with this command signed in as someone else, run the command as that account; otherwise delete or rename it (Microsoft Entra ID > App registrations), then run the command again."
fi

# May the caller register an application? (Only asked when the app is not there yet.)
may_create_apps() {
    local roles
    if [ "$USER_TYPE" = user ]; then
        azq rest --method get --url "$GRAPH/v1.0/policies/authorizationPolicy" \
            --query "defaultUserRolePermissions.allowedToCreateApps" -o tsv && [ "$OUT" = true ] && return 0
        azlist "$GRAPH/v1.0/me/transitiveMemberOf/microsoft.graph.directoryRole" roleTemplateId || return 1
        roles=$OUT
    else
        # An app signed in: Graph's Application.ReadWrite.All or .OwnedBy, or a directory role.
        azlist "$GRAPH/v1.0/servicePrincipals(appId='$USER_NAME')/appRoleAssignments" appRoleId || return 1
        case "$OUT" in
            *1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9* | *18a4783c-866b-4cc7-a460-3d5e5662c884*) return 0 ;;
        esac
        azlist "$GRAPH/v1.0/servicePrincipals(appId='$USER_NAME')/transitiveMemberOf/microsoft.graph.directoryRole" roleTemplateId ||
            return 1
        roles=$OUT
    fi
    # Application Developer, Application Administrator, Cloud Application Administrator, Global Administrator.
    case "$roles" in
        *cf1c38e5-3621-4004-a7cb-879624dced7c* | *9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3* | \
            *158c047a-c907-4556-b7ef-446551a6b5f7* | *62e90394-69f5-4237-9190-012177145e10*) return 0 ;;
    esac
    return 1
}
if [ -z "$APP_ID" ] && ! may_create_apps; then
    if [ "$USER_TYPE" = user ]; then
        fail 4 checks cannot-create-apps "$USER_NAME may not register applications in tenant $TENANT. Ask an administrator to turn on 'Users can register applications' (Microsoft Entra ID > User settings) or to give you the Application Developer role (or Application Administrator / Cloud Application Administrator), then run the command again."
    fi
    # "Users can register applications" applies to people only: an app needs a Graph permission.
    fail 4 checks cannot-create-apps "the app $USER_NAME (signed in to az) may not register applications in tenant $TENANT. Give it the Microsoft Graph application permission Application.ReadWrite.OwnedBy (or Application.ReadWrite.All) with admin consent (Microsoft Entra ID > App registrations > the app > API permissions), or a directory role (Application Developer, Application Administrator or Cloud Application Administrator), then run the command again."
fi

# Whether PERMISSIONS (ARM's permission entries: actions, then notActions) grant an action;
# Azure's wildcards honoured.
granted() {
    local want=$1 actions not a ok
    shopt -s nocasematch
    while IFS=$'\t' read -r actions not; do
        ok=0
        for a in $actions; do
            # shellcheck disable=SC2053 # an Azure wildcard is a glob
            [[ $want == $a ]] && ok=1
        done
        for a in $not; do
            # shellcheck disable=SC2053
            [[ $want == $a ]] && ok=0
        done
        [ $ok = 1 ] && { shopt -u nocasematch; return 0; }
    done <<<"$PERMISSIONS"
    shopt -u nocasematch
    return 1
}
if [ -n "$MG" ]; then
    # ARM has no permissions API at a management group: there Azure checks the rights at each
    # write (exit 5 with its reason; the same command resumes once they are granted).
    say "    rights at the group: checked by Azure at each write"
else
    # The caller's own actions on the subscription (ARM's permissions API).
    azlist "$ARM$ROLE_SCOPE/providers/Microsoft.Authorization/permissions?api-version=2022-04-01" \
        "[join(' ', actions), join(' ', notActions)]" ||
        fail 4 checks permissions-unreadable "could not read your permissions on $ROLE_SCOPE: $ERR"
    PERMISSIONS=$OUT
    set -f # the actions are globs to match, not to expand
    for need in Microsoft.Authorization/roleDefinitions/write Microsoft.Authorization/roleAssignments/write; do
        granted "$need" ||
            fail 4 checks missing-permission "$USER_NAME lacks $need on $ROLE_SCOPE. Ask an Owner or User Access Administrator of subscription $SUB_NAME for a role that grants it (for example User Access Administrator), then run the command again."
    done
    set +f
fi
say "    may register the app, create the role and assign it"
report checked ",\"tenantId\":\"$TENANT\",$TARGET_JSON"

# --- consent: whom this grants what, asked before the first write --------------------------------

if [ "$UNINSTALL" = 1 ]; then
    phase consent "what this removes"
else
    phase consent "whom this grants what"
fi
ORG_SHOWN=${PLAN[organization_id]:-}
[ -z "${PLAN[organization_name]:-}" ] || ORG_SHOWN="${PLAN[organization_name]} ($ORG_SHOWN)"
if [ -n "$APP_ID" ]; then APP_SHOWN="$APP_NAME (exists: $APP_ID)"; else APP_SHOWN="$APP_NAME (new)"; fi
read -ra PLANNED_ACTIONS <<<"${PLAN[role_actions]:-}"
say "    Spot organization  $ORG_SHOWN, account ${PLAN[account_id]:-}"
say "    Azure tenant       $TENANT (signed in as $USER_NAME)"
say "    scope              $TARGET"
say "    app registration   $APP_SHOWN"
say "    role               $ROLE_NAME: ${#PLANNED_ACTIONS[@]} actions at $ROLE_SCOPE, assigned to that app"
if [ "$DRY_RUN" = 0 ]; then
    if [ "$UNINSTALL" = 1 ]; then QUESTION="Type yes to remove them: "; else
        QUESTION="Spot's organization above will act in this $TARGET_KIND with that role. Type yes to grant it: "
    fi
    if [ "$YES" = 1 ]; then
        say "    granted with --yes"
    elif { : </dev/tty; } 2>/dev/null; then
        printf '%s' "$QUESTION" >/dev/tty
        ANSWER=""
        read -r ANSWER </dev/tty || true
        [ "$ANSWER" = yes ] || fail 2 consent declined "not granted: nothing was written (answer yes to grant)"
    else
        fail 2 consent no-terminal "there is no terminal to ask on: run the command in a terminal, or add --yes to grant without asking"
    fi
fi

# --- uninstall -----------------------------------------------------------------------------------

if [ "$UNINSTALL" = 1 ]; then
    phase uninstall "removing what azure-connect made for connection ${PLAN[connection]}"
    # Only the assignment this command makes (its fixed name), never another of the principal.
    ASSIGNMENT="$ROLE_SCOPE/providers/Microsoft.Authorization/roleAssignments/${PLAN[assignment_name]}"
    if azq rest --method get --url "$ARM$ASSIGNMENT?api-version=2022-04-01" --query id -o tsv; then
        azw role assignment delete --ids "$ASSIGNMENT" || fail 5 uninstall assignment-not-deleted "$ERR"
        say "    role assignment ${PLAN[assignment_name]} removed"
    fi
    azq role definition list --name "$ROLE_NAME" --custom-role-only true --scope "$ROLE_SCOPE" --query "[0].name" -o tsv
    if [ -n "$OUT" ]; then
        if azw role definition delete --name "$ROLE_NAME" --scope "$ROLE_SCOPE"; then
            say "    role $ROLE_NAME removed"
        else
            say "    role $ROLE_NAME kept: it is still assigned elsewhere ($ERR)"
        fi
    fi
    if [ -n "$APP_ID" ]; then
        azw ad app delete --id "$APP_ID" || fail 5 uninstall app-not-deleted "$ERR"
        say "    app registration $APP_NAME ($APP_ID) removed, with its service principal and credentials"
    fi
    report uninstalled
    say "uninstalled"
    exit 0
fi

# --- writes, each one found before it is made ---------------------------------------------------

phase application "$APP_NAME"
if [ -n "$APP_ID" ]; then
    say "    app registration exists: $APP_ID"
else
    # Marked at creation (notes), in the same request: the proof a later run looks for.
    BODY=$(printf '{"displayName":"%s","signInAudience":"AzureADMyOrg","notes":"%s"}' "$APP_NAME" "${PLAN[app_notes]}")
    azw rest --method post --url "$GRAPH/v1.0/applications" --headers Content-Type=application/json \
        --body "$BODY" --query "[appId, id]" -o tsv ||
        fail 5 application app-not-created "could not register the app: $ERR"
    mapfile -t FOUND_APP <<<"$OUT"
    APP_ID=${FOUND_APP[0]:-<new app id>} APP_OBJECT_ID=${FOUND_APP[1]:-}
    say "    app registration created: $APP_ID"
fi
SP_ID=""
if [ "$DRY_RUN" = 0 ] || [[ "$APP_ID" != "<"* ]]; then
    azq ad sp show --id "$APP_ID" --query id -o tsv && SP_ID=$OUT
fi
if [ -z "$SP_ID" ]; then
    azw ad sp create --id "$APP_ID" --query id -o tsv || {
        # Made meanwhile (a run that died just after): find it.
        azq ad sp show --id "$APP_ID" --query id -o tsv || fail 5 application sp-not-created "could not create the service principal: $ERR"
    }
    SP_ID=${OUT:-<new service principal id>}
    say "    service principal created: $SP_ID"
else
    say "    service principal exists: $SP_ID"
fi
report application ",\"clientId\":\"$APP_ID\",\"applicationObjectId\":\"${APP_OBJECT_ID:-}\",\"servicePrincipalId\":\"$SP_ID\""

SECRET_JSON=""
if [ "$CLIENT_SECRET" = 1 ]; then
    phase credential "a client secret (24 months) for Spot only"
    if [ "${PLAN[status]}" = connected ] && [ "${PLAN[credential_type]}" = secret ] && [ "${PLAN[client_id]}" = "$APP_ID" ]; then
        say "    connected with a client secret already: none added"
    else
        azw ad app credential reset --id "$APP_ID" --append --display-name "Spot (azure-connect)" --years 2 --query password -o tsv ||
            fail 5 credential secret-not-added "could not add a client secret: $ERR"
        [ -n "$OUT" ] && SECRET_JSON=",\"clientSecret\":\"$OUT\""
        OUT=""
        say "    client secret added (sent to Spot only, never shown)"
    fi
else
    phase credential "federated credential ${PLAN[federated_name]} (no secret)"
    [ -n "${PLAN[federated_issuer]:-}" ] ||
        fail 4 credential no-issuer "Spot's backend has no issuer for secretless connections: run again with --client-secret"
    PARAMS=$(printf '{"name":"%s","issuer":"%s","subject":"%s","audiences":["%s"],"description":"Spot (azure-connect): signs in without a client secret"}' \
        "${PLAN[federated_name]}" "${PLAN[federated_issuer]}" "${PLAN[federated_subject]}" "${PLAN[federated_audience]}")
    FOUND=""
    if [[ "$APP_ID" != "<"* ]]; then
        azq ad app federated-credential list --id "$APP_ID" \
            --query "[?name=='${PLAN[federated_name]}'] | [0].[issuer, subject, join(' ', audiences)]" -o tsv ||
            fail 5 credential credentials-unreadable "$ERR"
        FOUND=$(printf '%s' "$OUT" | tr '\n\t' '  ')
    fi
    if [ "$FOUND" = "${PLAN[federated_issuer]} ${PLAN[federated_subject]} ${PLAN[federated_audience]}" ]; then
        say "    federated credential in place"
    elif [ -n "$FOUND" ]; then
        azw ad app federated-credential update --id "$APP_ID" --federated-credential-id "${PLAN[federated_name]}" --parameters "$PARAMS" ||
            fail 5 credential credential-not-updated "could not update the federated credential: $ERR"
        say "    federated credential updated"
    else
        azw ad app federated-credential create --id "$APP_ID" --parameters "$PARAMS" --query id -o tsv ||
            fail 5 credential credential-not-created "could not add the federated credential: $ERR"
        say "    federated credential added: issuer ${PLAN[federated_issuer]}"
    fi
fi
report credential

phase role "$ROLE_NAME"
read -ra ACTIONS <<<"${PLAN[role_actions]}"
WANT_ACTIONS=$(printf '%s\n' "${ACTIONS[@]}" | sort -f | tr '\n' ' ')
azq role definition list --name "$ROLE_NAME" --custom-role-only true --scope "$ROLE_SCOPE" \
    --query "[0].[name, join(' ', permissions[0].actions), join(' ', assignableScopes)]" -o tsv ||
    fail 5 role role-unreadable "could not read custom roles: $ERR"
# az prints a list's items one per line.
mapfile -t FOUND_ROLE <<<"$OUT"
ROLE_ID=${FOUND_ROLE[0]:-} HAVE_SCOPES=${FOUND_ROLE[2]:-}
read -ra HAVE <<<"${FOUND_ROLE[1]:-}"
HAVE_ACTIONS=$(printf '%s\n' "${HAVE[@]}" | sort -f | tr '\n' ' ')
ACTIONS_JSON=$(printf '"%s",' "${ACTIONS[@]}")
role_file() {
    printf '{"Name":"%s","IsCustom":true,"Description":"%s","Actions":[%s],"NotActions":[],"DataActions":[],"NotDataActions":[],"AssignableScopes":["%s"]%s}\n' \
        "$ROLE_NAME" "${PLAN[role_description]}" "${ACTIONS_JSON%,}" "$ROLE_SCOPE" "$1" >"$WORK/role.json"
}
if [ -n "$ROLE_ID" ] && [ "${HAVE_ACTIONS,,}" = "${WANT_ACTIONS,,}" ] && [[ " $HAVE_SCOPES " == *" $ROLE_SCOPE "* ]]; then
    say "    role in place with all ${#ACTIONS[@]} actions"
elif [ -n "$ROLE_ID" ]; then
    role_file ",\"roleName\":\"$ROLE_NAME\",\"Id\":\"$ROLE_SCOPE/providers/Microsoft.Authorization/roleDefinitions/$ROLE_ID\""
    azw role definition update --role-definition @"$WORK/role.json" --query name -o tsv ||
        fail 5 role role-not-updated "could not update the role: $ERR"
    say "    role updated in place: $ROLE_ID"
else
    role_file ""
    azw role definition create --role-definition @"$WORK/role.json" --query name -o tsv ||
        fail 5 role role-not-created "could not create the role: $ERR"
    ROLE_ID=${OUT:-<new role id>}
    say "    role created: $ROLE_ID"
fi
report role ",\"roleDefinitionId\":\"$ROLE_ID\""

phase assignment "$ROLE_NAME to the service principal at $ROLE_SCOPE"
ASSIGNMENT=""
if [[ "$SP_ID" != "<"* ]] && [[ "$ROLE_ID" != "<"* ]]; then
    azlist "$ARM$ROLE_SCOPE/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&\$filter=principalId eq '$SP_ID'" \
        "[name, properties.roleDefinitionId]" ||
        fail 5 assignment assignments-unreadable "$ERR"
    while IFS=$'\t' read -r found_name found_role; do
        [[ "${found_role,,}" == *"/${ROLE_ID,,}" ]] && { ASSIGNMENT=$found_name; break; }
    done <<<"$OUT"
fi
if [ -n "$ASSIGNMENT" ]; then
    say "    role assignment in place: $ASSIGNMENT"
else
    # A new service principal or role takes a while to reach ARM: retried, with the principal's
    # type given (Azure's way around PrincipalNotFound).
    # az takes a role's full id only under a subscription; at a group it finds the role by name.
    ROLE_REF="$ROLE_SCOPE/providers/Microsoft.Authorization/roleDefinitions/$ROLE_ID"
    [ -z "$MG" ] || ROLE_REF=$ROLE_NAME
    for attempt in $(seq 1 24); do
        if azw role assignment create --assignee-object-id "$SP_ID" --assignee-principal-type ServicePrincipal \
            --role "$ROLE_REF" \
            --scope "$ROLE_SCOPE" --name "${PLAN[assignment_name]}" --query name -o tsv; then
            ASSIGNMENT=${OUT:-${PLAN[assignment_name]}}
            break
        fi
        case "$ERR" in
            *RoleAssignmentExists*) ASSIGNMENT=${PLAN[assignment_name]}; break ;;
            *RoleAssignmentUpdateNotPermitted*)
                fail 5 assignment assignment-name-taken "the role assignment ${PLAN[assignment_name]} at $ROLE_SCOPE already exists for another principal or role (Azure: RoleAssignmentUpdateNotPermitted), and azure-connect never changes an assignment it did not make. Remove that assignment (Access control (IAM) > Role assignments) if nobody needs it, then run the command again." ;;
            *PrincipalNotFound* | *RoleDefinitionDoesNotExist* | *"does not exist"* | *"doesn't exist"*)
                say "    waiting for Azure to replicate the new principal and role ($attempt)"
                sleep 5
                ;;
            *) fail 5 assignment assignment-not-created "could not assign the role: $ERR" ;;
        esac
    done
    [ -n "$ASSIGNMENT" ] || fail 5 assignment assignment-not-created "Azure did not accept the assignment within 2 minutes: run the same command again"
    say "    role assigned: $ASSIGNMENT"
fi
report assignment ",\"roleAssignmentId\":\"$ASSIGNMENT\""

if [ "$DRY_RUN" = 1 ]; then
    say "dry run: nothing was written ($AZ_CALLS az calls)"
    exit 0
fi

# --- Spot validates and links -------------------------------------------------------------------

phase connect "Spot validates the connection against Azure"
printf '{"phase":"done","scriptVersion":"%s","tenantId":"%s","clientId":"%s",%s,"applicationObjectId":"%s","servicePrincipalId":"%s","roleDefinitionId":"%s","roleAssignmentId":"%s"%s}' \
    "$SCRIPT_VERSION" "$TENANT" "$APP_ID" "$TARGET_JSON" "$APP_OBJECT_ID" "$SP_ID" "$ROLE_ID" "$ASSIGNMENT" "$SECRET_JSON" >"$WORK/done.json"
SECRET_JSON=""
DEADLINE=$(($(date +%s) + 600))
while true; do
    if api POST /setup/report "$WORK/done.json"; then
        if [ "${R[status]}" = connected ]; then
            rm -f "$WORK/done.json"
            say "connected: $TARGET is linked to Spot ($AZ_CALLS az calls, $(($(date +%s) - STARTED)) s)"
            exit 0
        fi
        echo "error: Spot answered status ${R[status]} (next step ${R[next_step]:-none})" >&2
        exit 6
    fi
    if [ "${R[retryable]:-false}" = true ] && [ "$(date +%s)" -lt "$DEADLINE" ]; then
        say "    ${R[title]:-not yet}: ${R[code]:-}; trying again in ${R[retry_after]:-5} s (Azure propagates new credentials and roles within minutes)"
        sleep "${R[retry_after]:-5}"
        continue
    fi
    echo "error [${R[step]:-connect}/${R[code]:-unknown}]: ${R[title]:-} ${R[detail]:-HTTP ${R[http_status]}}" >&2
    [ -n "${R[missingActions]:-}" ] && echo "missing actions: ${R[missingActions]}" >&2
    case "${R[http_status]}" in 422 | 409) exit 6 ;; *) exit 7 ;; esac
done

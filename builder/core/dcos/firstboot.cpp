#include "core/dcos/firstboot.hpp"

#include "core/slots/abi.hpp"

#include <string>

namespace kiln::dcos {

namespace {

std::string
replace_all(std::string text, const std::string& from, const std::string& to)
{
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

// Kept as one literal so it reads as the shell script it is; @NAME@ are filled in below.
const char* const k_script = R"SH(#!/bin/bash
# kiln: install DC/OS once, at first boot, from the bundle pre-staged in the image.
# Written by kiln build; run by @UNIT@.
#
# The stamp means DC/OS set itself up, not only that dcos_install.sh returned. The
# installer runs with --no-block-dcos-setup, as dcos-docker and dcos-e2e run it: DC/OS's
# generated script (dcos/dcos gen/build_deploy/bash.py, systemctl_no_block_service; the
# dcos-setup entry of gen/dcos-services.yaml is no_block) then enqueues dcos-setup.service
# (dcos-download's bootstrap tarball, then pkgpanda setup of ~80 packages, minutes) and
# returns. Without the flag the installer blocks in `systemctl start dcos-setup`, which has
# no deadline of its own and reports a failure only as the installer's status 1. So this
# script waits itself, bounded, for dcos-setup.service's result (systemctl show: no job
# left, not activating, its main process ran and exited 0 with Result=success), and a
# failure or a timeout leaves the failed marker with the journal of dcos-download and
# dcos-setup.
#
# The log file is written by this script directly, never through the journal:
# dcos_install.sh restarts systemd-journald, and on EL7 (systemd 219) that cuts the
# stdout stream of every running service; a pipe into tee would then die of SIGPIPE and
# take the installer with it. The unit's stdout (journal and console) only gets short
# status lines, written best-effort on fd 3.
# Runs on EL7's bash 4.2 and systemd 219 (no `systemctl --value`, no StandardOutput=append:).
set -u

root="${KILN_ROOT:-}"
default_role="@DEFAULT_ROLE@"
stamp="$root@STAMP@"
failed="$root@FAILED@"
log="$root@LOG@"
role_file="$root@ROLE_FILE@"
cmdline_file="$root/proc/cmdline"
dir="$root@INSTALL_DIR@"
installer_timeout=@INSTALLER_TIMEOUT@
# Test hooks (unset on a node): a shorter wait and poll interval.
setup_timeout="${KILN_DCOS_SETUP_TIMEOUT:-@SETUP_TIMEOUT@}"
poll="${KILN_DCOS_POLL_INTERVAL:-@POLL_INTERVAL@}"

if [ -e "$stamp" ]; then
  echo "kiln: DC/OS is already installed ($stamp)"
  exit 0
fi
mkdir -p "$(dirname "$log")" "$(dirname "$stamp")"
exec 3>&1
if ! exec >>"$log" 2>&1; then
  echo "kiln: cannot write $log" >&3
  exit 1
fi

say() {
  echo "kiln: $*"
  ( trap '' PIPE; echo "kiln: $*" >&3 ) 2>/dev/null || true
}

# Role: kernel command line, else the role file, else the recipe's default.
role=""
origin=""
if [ -r "$cmdline_file" ]; then
  for word in $(cat "$cmdline_file"); do
    case "$word" in
      @CMDLINE_KEY@=*) role="${word#@CMDLINE_KEY@=}"; origin="kernel command line" ;;
    esac
  done
fi
if [ -z "$role" ] && [ -s "$role_file" ]; then
  role="$(tr -d ' \t\r\n' < "$role_file")"
  origin="$role_file"
fi
if [ -z "$role" ]; then
  role="$default_role"
  origin="image default"
fi

fail() {
  local status="$1" reason="$2"
  say "DC/OS install failed: $reason"
  {
    echo "exit status: $status"
    echo "role: $role ($origin)"
    echo "reason: $reason"
    echo "log tail ($log):"
    tail -n 60 "$log"
  } > "$failed.tmp" && mv -f "$failed.tmp" "$failed"
  exit "$status"
}
trap 'fail 143 "stopped by SIGTERM (shutdown, or the unit timed out)"' TERM

# u_* = the unit's state, from `systemctl show` (KEY=VALUE lines in systemd's order;
# Job= only while a job is queued or running).
unit_state() {
  local out line
  u_active="" u_sub="" u_result="" u_status="" u_exit="" u_job=""
  out="$(timeout 60 systemctl show -p Job,ActiveState,SubState,Result,ExecMainStatus,ExecMainExitTimestampMonotonic "$1")" || return 1
  while IFS= read -r line; do
    case "$line" in
      Job=*) u_job="${line#*=}" ;;
      ActiveState=*) u_active="${line#*=}" ;;
      SubState=*) u_sub="${line#*=}" ;;
      Result=*) u_result="${line#*=}" ;;
      ExecMainStatus=*) u_status="${line#*=}" ;;
      ExecMainExitTimestampMonotonic=*) u_exit="${line#*=}" ;;
    esac
  done <<STATE
$out
STATE
  u_summary="ActiveState=$u_active SubState=$u_sub Result=$u_result ExecMainStatus=$u_status"
}

setup_journal() {
  echo "kiln: journal of dcos-download.service and dcos-setup.service (read after the fact):"
  timeout 60 journalctl --no-pager -b -n 300 -u dcos-download.service -u dcos-setup.service
  echo "kiln: end of the journal"
}

case "$role" in
  master|slave|slave_public) ;;
  *) fail 2 "unknown DC/OS role '$role' (from $origin); expected master, slave or slave_public" ;;
esac
if [ ! -f "$dir/dcos_install.sh" ]; then
  fail 2 "$dir/dcos_install.sh is missing"
fi

rm -f "$failed"
echo "kiln: first-boot install started $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "installing DC/OS as $role (role from $origin)"
cd "$dir" || fail 2 "cannot enter $dir"
unit_state dcos-setup.service || fail 1 "systemctl cannot show dcos-setup.service"
exit_before="$u_exit"
timeout "$installer_timeout" bash "$dir/dcos_install.sh" --no-block-dcos-setup "$role" < /dev/null
status=$?
if [ "$status" -eq 124 ]; then
  fail 124 "dcos_install.sh did not finish within $installer_timeout s"
elif [ "$status" -ne 0 ]; then
  fail "$status" "dcos_install.sh exited with status $status"
fi

say "dcos_install.sh done; waiting up to $setup_timeout s for dcos-setup.service (dcos-download, pkgpanda setup)"
deadline=$((SECONDS + setup_timeout))
while :; do
  unit_state dcos-setup.service || fail 1 "systemctl cannot show dcos-setup.service"
  case "$u_active" in
    activating|deactivating|reloading) ;;
    *) if [ -z "$u_job" ] || [ "$u_job" = 0 ]; then break; fi ;;
  esac
  if [ "$SECONDS" -ge "$deadline" ]; then
    setup_journal
    fail 124 "dcos-setup.service did not finish within $setup_timeout s ($u_summary Job=$u_job)"
  fi
  sleep "$poll"
done
if [ "$u_exit" = "$exit_before" ]; then
  setup_journal
  setup_summary="$u_summary"
  unit_state dcos-download.service || true
  fail 1 "dcos-setup.service did not run ($setup_summary; dcos-download.service: $u_summary)"
fi
if [ "$u_result" != success ] || [ "$u_active" = failed ] || [ "$u_status" != 0 ]; then
  setup_journal
  status=1
  case "$u_status" in
    ''|*[!0-9]*|0) ;;
    *) [ "$u_status" -le 255 ] && status="$u_status" ;;
  esac
  fail "$status" "dcos-setup.service failed ($u_summary)"
fi
echo "kiln: dcos-setup.service finished ($u_summary)"

printf 'role=%s\norigin=%s\ninstalled=%s\nsetup=dcos-setup.service %s\n' "$role" "$origin" \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "Result=$u_result" > "$stamp.tmp"
mv -f "$stamp.tmp" "$stamp"
say "DC/OS installed as $role (dcos-setup.service succeeded)"
)SH";

const char* const k_unit = R"UNIT([Unit]
Description=kiln: install DC/OS from the pre-staged bundle (first boot)
Documentation=file:@SCRIPT@
Wants=docker.service network-online.target time-sync.target
After=docker.service network-online.target time-sync.target
ConditionPathExists=!@STAMP@

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/bash @SCRIPT@
# The script writes @LOG@ itself (dcos_install.sh restarts journald);
# the journal and the console get its status lines.
StandardOutput=journal+console
StandardError=journal+console
# Past the script's own bounds (dcos_install.sh, then the wait for dcos-setup.service).
TimeoutStartSec=@UNIT_TIMEOUT@

[Install]
WantedBy=multi-user.target
)UNIT";

std::string
fill(std::string text)
{
  text = replace_all(text, "@UNIT@", std::string(slots::k_dcos_unit));
  text = replace_all(text, "@STAMP@", std::string(slots::k_dcos_stamp));
  text = replace_all(text, "@FAILED@", std::string(slots::k_dcos_failed));
  text = replace_all(text, "@LOG@", std::string(slots::k_dcos_log));
  text = replace_all(text, "@ROLE_FILE@", std::string(slots::k_dcos_role_file));
  text = replace_all(text, "@INSTALL_DIR@", std::string(slots::k_dcos_install_dir));
  text = replace_all(text, "@CMDLINE_KEY@", std::string(slots::k_cmdline_dcos_role));
  text = replace_all(text, "@SCRIPT@", k_firstboot_script);
  text = replace_all(text, "@INSTALLER_TIMEOUT@", std::to_string(k_installer_timeout_s));
  text = replace_all(text, "@SETUP_TIMEOUT@", std::to_string(k_setup_timeout_s));
  text = replace_all(text, "@POLL_INTERVAL@", std::to_string(k_setup_poll_s));
  text = replace_all(text, "@UNIT_TIMEOUT@", std::to_string(k_unit_timeout_s));
  return text;
}

} // namespace

std::string
firstboot_script(Role default_role)
{
  return replace_all(fill(k_script), "@DEFAULT_ROLE@", role_name(default_role));
}

std::string
firstboot_unit()
{
  return fill(k_unit);
}

} // namespace kiln::dcos

#include "core/dcos/firstboot.hpp"

#include "core/slots/abi.hpp"

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
set -u

root="${KILN_ROOT:-}"
default_role="@DEFAULT_ROLE@"
stamp="$root@STAMP@"
failed="$root@FAILED@"
log="$root@LOG@"
role_file="$root@ROLE_FILE@"
cmdline_file="$root/proc/cmdline"
dir="$root@INSTALL_DIR@"

if [ -e "$stamp" ]; then
  echo "kiln: DC/OS is already installed ($stamp)"
  exit 0
fi
mkdir -p "$(dirname "$log")" "$(dirname "$stamp")"

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
  echo "kiln: DC/OS install failed: $reason" | tee -a "$log"
  {
    echo "exit status: $status"
    echo "role: $role ($origin)"
    echo "reason: $reason"
    echo "log tail ($log):"
    tail -n 40 "$log"
  } > "$failed.tmp" && mv -f "$failed.tmp" "$failed"
  exit "$status"
}

case "$role" in
  master|slave|slave_public) ;;
  *) fail 2 "unknown DC/OS role '$role' (from $origin); expected master, slave or slave_public" ;;
esac
if [ ! -f "$dir/dcos_install.sh" ]; then
  fail 2 "$dir/dcos_install.sh is missing"
fi

rm -f "$failed"
echo "kiln: installing DC/OS as $role (role from $origin)" | tee -a "$log"
cd "$dir" || fail 2 "cannot enter $dir"
bash "$dir/dcos_install.sh" --no-block-dcos-setup "$role" 2>&1 | tee -a "$log"
status="${PIPESTATUS[0]}"
if [ "$status" -ne 0 ]; then
  fail "$status" "dcos_install.sh exited with status $status"
fi
printf 'role=%s\norigin=%s\ninstalled=%s\n' "$role" "$origin" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$stamp.tmp"
mv -f "$stamp.tmp" "$stamp"
echo "kiln: DC/OS installed as $role" | tee -a "$log"
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
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=0

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
  return text;
}

} // namespace

std::string
firstboot_script(const std::string& default_role)
{
  return replace_all(fill(k_script), "@DEFAULT_ROLE@", default_role);
}

std::string
firstboot_unit()
{
  return fill(k_unit);
}

} // namespace kiln::dcos

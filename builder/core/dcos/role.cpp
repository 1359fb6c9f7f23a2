#include "core/dcos/role.hpp"

namespace kiln::dcos {

const char*
role_name(Role role)
{
  switch (role) {
    case Role::master:
      return "master";
    case Role::slave:
      return "slave";
    case Role::slave_public:
      return "slave_public";
  }
  return "";
}

std::optional<Role>
parse_role(std::string_view name)
{
  for (Role r : {Role::master, Role::slave, Role::slave_public}) {
    if (name == role_name(r)) {
      return r;
    }
  }
  return std::nullopt;
}

const std::vector<std::string>&
roles()
{
  static const std::vector<std::string> names{role_name(Role::master), role_name(Role::slave),
                                              role_name(Role::slave_public)};
  return names;
}

const char*
mesos_unit(Role role)
{
  switch (role) {
    case Role::master:
      return "dcos-mesos-master.service";
    case Role::slave:
      return "dcos-mesos-slave.service";
    case Role::slave_public:
      return "dcos-mesos-slave-public.service";
  }
  return "";
}

} // namespace kiln::dcos

// The JSON form of kiln-node's reports (core/node/report_json.hpp): the keys and value
// types `kiln-node --json` has always printed.
#include "core/node/report_json.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

using nlohmann::json;

node::StatusReport
sample_status()
{
  node::StatusReport r;
  r.disk = "/dev/sda";
  r.booted = 'A';
  r.order = "B A";
  r.a = {"good", "0", std::string(64, 'a'), "node-7", "11111111-1111-4111-8111-111111111111"};
  r.b = {"trial", "3", std::string(64, 'b'), "node-8", "22222222-2222-4222-8222-222222222222"};
  r.next_boot = {'B', slots::BootReason::trial, "2"};
  r.highest_version = 8;
  r.dcos.installed = true;
  return r;
}

TEST(NodeReportJson, Status)
{
  json expected = json::parse(R"({
    "disk": "/dev/sda", "in_progress": false, "booted": "A", "order": "B A",
    "slots": {
      "A": {"state": "good", "tries": "0", "digest": ")" +
                              std::string(64, 'a') + R"(", "name": "node-7",
            "partuuid": "11111111-1111-4111-8111-111111111111"},
      "B": {"state": "trial", "tries": "3", "digest": ")" +
                              std::string(64, 'b') + R"(", "name": "node-8",
            "partuuid": "22222222-2222-4222-8222-222222222222"}},
    "next_boot": {"slot": "B", "reason": "trial", "tries_after": "2"},
    "highest_version": 8,
    "dcos": {"installed": true, "failed": false, "role": null,
             "stamp": "/var/lib/kiln/dcos-installed", "failed_marker": "/var/lib/kiln/dcos-install-failed"}})");
  json j = sample_status();
  EXPECT_EQ(j, expected) << j.dump(2);
  EXPECT_TRUE(j["slots"]["A"]["tries"].is_string());
  EXPECT_TRUE(j["highest_version"].is_number_unsigned());
}

TEST(NodeReportJson, StatusOfAnotherDisk)
{
  node::StatusReport r = sample_status();
  r.booted.reset();
  r.in_progress = true;
  r.next_boot = {'A', slots::BootReason::last_resort, ""};
  r.dcos.role = "slave";
  json j = r;
  EXPECT_TRUE(j["booted"].is_null());
  EXPECT_TRUE(j["in_progress"].get<bool>());
  EXPECT_EQ(j["next_boot"], json::parse(R"({"slot": "A", "reason": "last-resort"})")); // no tries_after
  EXPECT_EQ(j["dcos"]["role"], "slave");
}

TEST(NodeReportJson, Reimage)
{
  node::ReimageReport r;
  r.slot = 'B';
  r.partition = "/dev/sda3";
  r.name = "node";
  r.version = 9;
  r.highest_version = 9;
  r.digest = std::string(64, 'c');
  r.tries = 3;
  r.write = {1000, 600, 400, 200, 24, node::WriteMode::resume};
  r.resumes = 1;
  r.next_boot = {'B', slots::BootReason::trial, "2"};
  json j = r;
  EXPECT_EQ(j, json::parse(R"({
    "slot": "B", "partition": "/dev/sda3", "name": "node", "version": 9, "highest_version": 9,
    "digest": ")" + std::string(64, 'c') +
                           R"(", "key_id": null, "tries": 3,
    "image_size": 1000, "mapped_bytes": 600, "written_bytes": 400, "skipped_bytes": 200, "zeroed_bytes": 24,
    "write_mode": "resume", "read_back": "uncached", "resumes": 1, "next_boot": {"slot": "B", "reason": "trial", "tries_after": "2"}})"))
    << j.dump(2);
  r.key_id = "0123456789abcdef";
  EXPECT_EQ(json(r)["key_id"], "0123456789abcdef");
  r.write.mode = node::WriteMode::compare;
  EXPECT_EQ(json(r)["write_mode"], "compare");
  r.write.direct_read_back = true;
  EXPECT_EQ(json(r)["read_back"], "direct");
}

TEST(NodeReportJson, RollbackWarnsOnlyWhenForced)
{
  node::RollbackReport r{'B', 'A', {'A', slots::BootReason::good, ""}, {}};
  EXPECT_EQ(json(r), json::parse(R"({"from": "B", "to": "A", "next_boot": {"slot": "A", "reason": "good"}})"));
  r.warning = "rollback: older DC/OS; rolled back anyway (--force)";
  EXPECT_EQ(json(r)["warning"], r.warning);
}

TEST(NodeReportJson, MarkGood)
{
  node::MarkGoodReport r{'A', {'A', slots::BootReason::good, ""}};
  EXPECT_EQ(json(r), json::parse(R"({"slot": "A", "state": "good", "next_boot": {"slot": "A", "reason": "good"}})"));
}

TEST(NodeReportJson, InstallWithAndWithoutGrowth)
{
  node::InstallReport r;
  r.disk = "/dev/vda";
  r.name = "node";
  r.identity.disk_guid = "g";
  r.identity.partitions = {{"kiln-a", "ga"}, {"kiln-b", "gb"}};
  r.digest = "d";
  r.key_id = "k";
  r.write = {10, 8, 6, 2, 0, node::WriteMode::straight, true};
  json j = r;
  EXPECT_EQ(j, json::parse(R"({
    "disk": "/dev/vda", "name": "node", "data_partition": {"changed": false},
    "identity": {"disk_guid": "g", "partitions": {"kiln-a": "ga", "kiln-b": "gb"}},
    "digest": "d", "key_id": "k",
    "image_size": 10, "mapped_bytes": 8, "written_bytes": 6, "skipped_bytes": 2, "zeroed_bytes": 0,
    "write_mode": "straight", "read_back": "direct"})"))
    << j.dump(2);
  r.data_partition = node::PartitionGrowth{true, 5, 100, 200, 51200, 300};
  EXPECT_EQ(json(r)["data_partition"],
            json::parse(R"({"changed": true, "partition": 5, "old_end_lba": 100, "new_end_lba": 200,
                            "added_bytes": 51200, "backup_lba": 300})"));
  r.identity.partitions.clear();
  EXPECT_TRUE(json(r)["identity"]["partitions"].is_object());
}

TEST(NodeReportJson, GrowDataNamesHowOnlyWhenTheKernelWasTold)
{
  node::GrowDataReport r;
  r.disk = "/dev/vda";
  r.device = "/dev/vda6";
  r.mount = "/var/lib/kiln-data";
  r.kernel = {4096, false, "", 4096};
  r.filesystem = {"xfs", 4096, 4096, false};
  json j = r;
  EXPECT_FALSE(j["kernel"].contains("how"));
  EXPECT_EQ(j["filesystem"], json::parse(R"({"type": "xfs", "size_before": 4096, "size": 4096, "changed": false})"));
  r.kernel = {4096, true, "BLKPG_RESIZE_PARTITION", 8192};
  EXPECT_EQ(json(r)["kernel"]["how"], "BLKPG_RESIZE_PARTITION");
}

TEST(NodeReportJson, WipeListsAreArraysEvenWhenEmpty)
{
  node::WipeReport r;
  r.root = "/";
  r.removed = {"/opt/mesosphere"};
  r.removed_entries = 3;
  json j = r;
  EXPECT_EQ(j, json::parse(R"({"root": "/", "keep_data": false, "removed": ["/opt/mesosphere"],
    "removed_entries": 3, "mount_points_skipped": [], "symlinks_not_followed": [],
    "volumes_kept": [], "volumes_wiped": []})"))
    << j.dump(2);
}

} // namespace
} // namespace kiln

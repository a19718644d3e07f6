// OrderModules: the dependency order ApplySchema applies schema modules in.
// ApplySchema itself runs in every integration test (each applies the real
// modules of its binary) and in schema_test, which also adopts a legacy database.
#include "common/migrate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bpmc {
namespace {

SchemaModule M(std::string name, std::vector<std::string> after) {
  return SchemaModule{std::move(name), std::move(after), {}};
}

std::string Names(const std::vector<const SchemaModule*>& modules) {
  std::string out;
  for (const SchemaModule* m : modules) out += (out.empty() ? "" : " ") + m->name;
  return out;
}

TEST(OrderModulesTest, Table) {
  const SchemaModule identity = M("identity", {});
  const SchemaModule ingestion = M("ingestion", {"identity"});
  const SchemaModule aggregation = M("aggregation", {"ingestion"});
  const SchemaModule billing = M("billing", {"identity"});
  const SchemaModule notices = M("notices", {"identity", "billing", "incidents"});
  const SchemaModule incidents = M("incidents", {"receiver"});
  const SchemaModule receiver = M("receiver", {});
  struct Case {
    std::vector<const SchemaModule*> in;
    std::string want;  // names in order, or "error: <substring>"
  };
  const Case cases[] = {
      {{}, ""},
      {{&identity}, "identity"},
      {{&identity, &ingestion, &aggregation, &billing}, "identity ingestion aggregation billing"},
      // Listed backwards: dependencies first, the given order among the rest.
      {{&aggregation, &billing, &ingestion, &identity}, "identity billing ingestion aggregation"},
      {{&notices, &incidents, &receiver, &billing, &identity},
       "receiver incidents identity billing notices"},
      {{&ingestion}, "error: 'ingestion' needs 'identity'"},
      {{&identity, &identity}, "error: 'identity' is listed twice"},
  };
  for (const Case& c : cases) {
    std::string got;
    try {
      got = Names(OrderModules(c.in));
    } catch (const SchemaError& e) {
      got = std::string("error: ") + e.what();
    }
    if (c.want.rfind("error: ", 0) == 0) {
      EXPECT_NE(got.find(c.want.substr(7)), std::string::npos) << got;
    } else {
      EXPECT_EQ(got, c.want);
    }
  }
}

TEST(OrderModulesTest, CycleIsAnError) {
  const SchemaModule a = M("a", {"b"});
  const SchemaModule b = M("b", {"a"});
  EXPECT_THROW(OrderModules({&a, &b}), SchemaError);
}

}  // namespace
}  // namespace bpmc

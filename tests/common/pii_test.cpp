// ScrubPii (common/pii.h): e-mails, URL credentials and phone numbers out of free
// text, everything else kept. The rules are in docs/ACCESS.md.
#include "common/pii.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bpmc {
namespace {

// ----------------------------------------------------------- ScrubPii ----

struct ScrubCase {
  const char* input;
  const char* expected;
};

TEST(ScrubPiiTest, Table) {
  const ScrubCase cases[] = {
      // Nothing personal: unchanged.
      {"", ""},
      {"timeout after 30000 ms", "timeout after 30000 ms"},
      {"order 12345 not found", "order 12345 not found"},
      {"created 2026-11-25", "created 2026-11-25"},
      {"at 2026-11-25 10:00:00 and 2026-11-25T10:00:00.123Z",
       "at 2026-11-25 10:00:00 and 2026-11-25T10:00:00.123Z"},
      {"at 2026-11-25 10:00 then", "at 2026-11-25 10:00 then"},
      {"unix 1732500000 ms 1732500000123", "unix 1732500000 ms 1732500000123"},
      {"id 550e8400-e29b-41d4-a716-446655440000", "id 550e8400-e29b-41d4-a716-446655440000"},
      {"HTTP 503 from 192.168.100.200:8080", "HTTP 503 from 192.168.100.200:8080"},
      {"amount 1 234 567 890 RUB", "amount 1 234 567 890 RUB"},
      {"amount 12 345 678 901,50", "amount 12 345 678 901,50"},
      {"deal_79991234567 and abc79991234567", "deal_79991234567 and abc79991234567"},
      {"value 79991234567.5", "value 79991234567.5"},
      {"range 1000000-2000000", "range 1000000-2000000"},
      {"v1.2.3 (build 42)", "v1.2.3 (build 42)"},
      {"@channel ping", "@channel ping"},
      {"user@localhost refused", "user@localhost refused"},
      {"offset +03:00", "offset +03:00"},
      {"counts 1234567890123456789", "counts 1234567890123456789"},
      // E-mail addresses.
      {"contact ivan.petrov@mail.ru failed", "contact [email] failed"},
      {"Ivan.Petrov+tag@sub.example.co.uk", "[email]"},
      {"<ivan@example.com>", "<[email]>"},
      {"mailto:ivan@example.com.", "mailto:[email]."},
      {"a@b.c is too short a domain", "a@b.c is too short a domain"},
      {"x@example.com,y@example.org", "[email],[email]"},
      {"user123@gmail.com", "[email]"},
      {"ivan@mail.ru.123", "[email].123"},
      {"ivan@xn--80ak6aa92e.xn--p1ai", "[email]"},
      // URLs: the user part is removed, the host kept.
      {"GET https://user:secret@api.example.com/v1 failed",
       "GET https://[email]@api.example.com/v1 failed"},
      {"https://ivan@example.com/x", "https://[email]@example.com/x"},
      {"https://api.example.com/contacts?email=ivan@mail.ru&x=1",
       "https://api.example.com/contacts?email=[email]&x=1"},
      {"https://api.example.com/v1/orders/12345", "https://api.example.com/v1/orders/12345"},
      // Phone numbers.
      {"call +7 999 123-45-67 now", "call [phone] now"},
      {"call +7 (999) 123-45-67", "call [phone]"},
      {"8 (999) 123 45 67", "[phone]"},
      {"8-800-555-35-35", "[phone]"},
      {"(495) 123-45-67", "[phone]"},
      {"999 123 45 67", "[phone]"},
      {"+79991234567", "[phone]"},
      {"phone:89991234567;", "phone:[phone];"},
      {"+1 555 123 4567", "[phone]"},
      {"555-123-4567", "[phone]"},
      {"+44 20 7946 0958", "[phone]"},
      {"https://crm.example.com/contacts/79991234567", "https://crm.example.com/contacts/[phone]"},
      {"ids 42 79991234567 7", "ids 42 [phone] 7"},
      // Cyrillic text around them.
      {"Ошибка: клиент ivan@mail.ru, тел. +7 (999) 123-45-67, заказ 12345 от 2026-11-25",
       "Ошибка: клиент [email], тел. [phone], заказ 12345 от 2026-11-25"},
      {"Пользователь иван@почта.рф не найден", "Пользователь [email] не найден"},
      {"тел.89991234567", "тел.[phone]"},
      {"почта «ivan@mail.ru» недоступна", "почта «[email]» недоступна"},
      {"Сделка №12345 — сумма 1 500 руб.", "Сделка №12345 — сумма 1 500 руб."},
  };
  for (const ScrubCase& c : cases) EXPECT_EQ(ScrubPii(c.input), c.expected) << c.input;
}

TEST(ScrubPiiTest, IdempotentAndSafeOnBinaryInput) {
  const std::string text = "ivan@mail.ru +7 999 123-45-67 \xff\xfe@\xc0.ru 2026-11-25";
  const std::string once = ScrubPii(text);
  EXPECT_EQ(ScrubPii(once), once);
  // Long adversarial inputs finish (linear time) and keep their length order.
  std::string many_at(200000, '@');
  EXPECT_EQ(ScrubPii(many_at), many_at);
  std::string local(100000, 'a');
  local += "@";
  EXPECT_EQ(ScrubPii(local + "x").size(), local.size() + 1);
  std::string digits;
  for (int i = 0; i < 20000; ++i) digits += "12 ";
  EXPECT_EQ(ScrubPii(digits), digits);
}

// ---------------------------------------------------------- Pseudonyms ----

}  // namespace
}  // namespace bpmc

//===- qlc-chat-template.cpp - render a chat template ---------------------===//
//
//   qlc-chat-template --template FILE --messages JSON_FILE [--add-generation-prompt]
//                     [--bos TEXT] [--eos TEXT] [--extra JSON_FILE] [--date YYYY-MM-DD]
//
// Prints the rendering to stdout, byte for byte. Exit 2 with
// 'qlc-chat-template: error: ...' on bad input or a template error.
//
#include "chat/ChatTemplate.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

namespace {

constexpr int kExitBadInput = 2;

int fail(const std::string &msg) {
  std::cerr << "qlc-chat-template: error: " << msg << "\n";
  return kExitBadInput;
}

bool readFile(const std::string &path, std::string &out, std::string &error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot open '" + path + "'";
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    error = "cannot read '" + path + "'";
    return false;
  }
  out = ss.str();
  return true;
}

bool readJson(const std::string &path, nlohmann::ordered_json &out, std::string &error) {
  std::string text;
  if (!readFile(path, text, error))
    return false;
  out = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) {
    error = "'" + path + "' is not valid JSON";
    return false;
  }
  return true;
}

/// "YYYY-MM-DD" as seconds since the epoch (midnight UTC).
bool parseDate(const std::string &s, std::time_t &out) {
  int y, m, d;
  char tail;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 ||
      d < 1 || d > 31)
    return false;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = m - 1;
  tm.tm_mday = d;
  out = timegm(&tm);
  return true;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"Render a Hugging Face chat template (Jinja2) as transformers would."};
  std::string templatePath, messagesPath, extraPath, bos, eos, date;
  bool addGenerationPrompt = false;
  app.add_option("--template", templatePath, "the chat template (a Jinja2 file)")->required();
  app.add_option("--messages", messagesPath, "the conversation: a JSON array of messages")
      ->required();
  app.add_flag("--add-generation-prompt", addGenerationPrompt,
               "end with the header of an assistant turn");
  auto *bosOpt = app.add_option("--bos", bos, "bos_token");
  auto *eosOpt = app.add_option("--eos", eos, "eos_token");
  app.add_option("--extra", extraPath, "more template variables: a JSON object (tools, ...)");
  app.add_option("--date", date, "strftime_now's date, YYYY-MM-DD (UTC midnight)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    if (e.get_exit_code() == 0)
      return app.exit(e);
    return fail(e.what());
  }

  std::string error, source;
  if (!readFile(templatePath, source, error))
    return fail(error);
  qlc::chat::ChatTemplateInputs inputs;
  if (!readJson(messagesPath, inputs.messages, error))
    return fail(error);
  if (!inputs.messages.is_array())
    return fail("'" + messagesPath + "' must hold a JSON array of messages");
  if (!extraPath.empty()) {
    if (!readJson(extraPath, inputs.extra, error))
      return fail(error);
    if (!inputs.extra.is_object())
      return fail("'" + extraPath + "' must hold a JSON object");
  }
  if (*bosOpt)
    inputs.extra["bos_token"] = bos;
  if (*eosOpt)
    inputs.extra["eos_token"] = eos;
  if (!date.empty()) {
    std::time_t t;
    if (!parseDate(date, t))
      return fail("--date: '" + date + "' is not a date of the form YYYY-MM-DD");
    inputs.now = t;
  }
  inputs.addGenerationPrompt = addGenerationPrompt;

  auto tmpl = qlc::chat::ChatTemplate::parse(source, &error);
  if (!tmpl)
    return fail(templatePath + ": " + error);
  auto text = tmpl->render(inputs, &error);
  if (!text)
    return fail(templatePath + ": " + error);
  std::fwrite(text->data(), 1, text->size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

// clicklake init: writes a commented configuration file and the PII key file.
#include <openssl/rand.h>
#include <sys/stat.h>

#include <fstream>
#include <iostream>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "common/file_system.h"

namespace clicklake::cli {

int RunInitCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app("clicklake init", "clicklake init");
  std::string path = "clicklake.toml";
  std::string key_path;
  bool force = false;
  app.add_option("--config", path, "where to write the configuration (default clicklake.toml)");
  app.add_option("--key-file", key_path, "where to create the HMAC key for PII hashing (default ~/.clicklake/pii.key)");
  app.add_flag("--force", force, "overwrite an existing configuration");
  if (int rc = ParseArgs(app, args, out, err); rc >= 0) return rc;

  FileSystem* fs = FileSystem::Default();
  if (fs->Exists(path) && !force) {
    err << "clicklake init: " << path << " exists; pass --force to overwrite it\n";
    return 1;
  }
  if (key_path.empty()) {
    const char* home = std::getenv("HOME");
    key_path = std::string(home ? home : ".") + "/.clicklake/pii.key";
  }
  // The key lives outside the lake, readable by its owner only.
  if (!fs->Exists(key_path)) {
    if (Status s = fs->CreateDirs(DirName(key_path)); !s.ok()) {
      err << "clicklake init: " << s.message() << "\n";
      return 1;
    }
    unsigned char key[32];
    if (RAND_bytes(key, sizeof key) != 1) {
      err << "clicklake init: no randomness for the key\n";
      return 1;
    }
    static const char* kHex = "0123456789abcdef";
    std::string hex;
    for (unsigned char b : key) {
      hex.push_back(kHex[b >> 4]);
      hex.push_back(kHex[b & 15]);
    }
    mode_t old = ::umask(077);
    Status s = fs->WriteFile(key_path, hex + "\n");
    ::umask(old);
    if (s.ok() && ::chmod(key_path.c_str(), 0600) != 0) s = Status::FromErrno("chmod", key_path, errno);
    if (!s.ok()) {
      err << "clicklake init: " << s.message() << "\n";
      return 1;
    }
    out << "wrote " << key_path << " (0600)\n";
  }
  std::string toml = DefaultConfigToml();
  const std::string kDefaultKeyLine = "# key_file = \"/etc/clicklake/pii.key\"";
  toml.replace(toml.find(kDefaultKeyLine), kDefaultKeyLine.size(), "key_file = \"" + key_path + "\"");
  if (Status s = fs->WriteFile(path, toml); !s.ok()) {
    err << "clicklake init: " << s.message() << "\n";
    return 1;
  }
  out << "wrote " << path << "\n";
  return 0;
}

}  // namespace clicklake::cli

"""Real git for the tests that need repositories (t5100, t9200): git run
with a clean environment (no GIT_* inherited, no system or global config,
a fixed author) and a repository with one commit."""
import os, subprocess


class Git:
    def __init__(self, home):
        """home: a scratch folder (the tests' tmp), git's HOME."""
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        self.env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", HOME=home,
                        GIT_AUTHOR_NAME="T", GIT_AUTHOR_EMAIL="t@example.com",
                        GIT_COMMITTER_NAME="T", GIT_COMMITTER_EMAIL="t@example.com")

    def __call__(self, *args, cwd=None):
        """Runs git args in cwd; its stdout (a failure raises)."""
        return subprocess.run(["git"] + list(args), cwd=cwd, env=self.env, check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True).stdout

    def make_repo(self, name, branch="main"):
        """A work tree home/name whose branch has one commit (README.md)."""
        path = os.path.join(self.home, name)
        self("init", "-q", "-b", branch, path)
        with open(os.path.join(path, "README.md"), "w") as f:
            f.write("hello\n")
        self("add", "README.md", cwd=path)
        self("commit", "-q", "-m", "first", cwd=path)
        return path

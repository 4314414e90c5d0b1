// SPDX-License-Identifier: MIT
/* e2e-handover "dtc": decode the real blobs with the stock dtc. */
#include "handover.h"

/* ------------------------------------------------------------------ */
/* dtc: decode the real blobs with the stock device tree compiler. */

/* Run dtc on @in, output to @out; returns its exit status or -1. */
static int run_dtc(const char *dtc, const char *in, const char *out)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);

		dup2(nul, 2); /* dtc's warnings are not our business */
		execl(dtc, dtc, "-I", "dtb", "-O", "dts", "-o", out, in,
		      (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static void write_blob(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "w");

	if (!f || fwrite(p, 1, len, f) != len || fclose(f))
		die("writing %s", path);
}

/* Decode @blob; check every string of @want appears in the output. */
static int decode(const char *dtc, const char *dir, const char *name,
		  const void *blob, size_t len, const char *const *want,
		  size_t nwant)
{
	char in[PATH_MAX], out[PATH_MAX];
	char *text;
	int rc, bad = 0;

	snprintf(in, sizeof(in), "%s/%s.dtb", dir, name);
	snprintf(out, sizeof(out), "%s/%s.dts", dir, name);
	write_blob(in, blob, len);
	rc = run_dtc(dtc, in, out);
	if (rc) {
		printf("handover-dtc: FAIL: dtc exit %d on the %s blob\n", rc,
		       name);
		return 1;
	}
	text = slurp(out);
	if (!text)
		die("reading %s", out);
	printf("--- %s (%zu bytes) decoded by dtc ---\n%s", name, len, text);
	/* Kept for tests/abi/handover_names.py, which checks them against
	 * luo/abi.h. */
	if (getenv("LUO_E2E_DTS_DIR")) {
		char keep[PATH_MAX];

		snprintf(keep, sizeof(keep), "%s/%s.dts",
			 getenv("LUO_E2E_DTS_DIR"), name);
		write_blob(keep, text, strlen(text));
	}
	for (size_t i = 0; i < nwant; i++)
		if (!strstr(text, want[i])) {
			printf("handover-dtc: FAIL: %s: no \"%s\" in the dtc output\n",
			       name, want[i]);
			bad++;
		}
	free(text);
	unlink(in);
	unlink(out);
	return bad;
}

int stage_dtc(const char *dtc)
{
	char dir[] = "/tmp/luo-e2e-dtc.XXXXXX";
	char luo_fdt[64], ser[64], user_fdt[64], big[64];
	const void *root, *luo, *user;
	int bad = 0;

	take_handover();
	parse_layout();
	if (!mkdtemp(dir))
		die("mkdtemp: %s", strerror(errno));
	root = L.p + L.root;
	luo = L.p + L.luo;
	user = L.p + L.user;
	/* dtc prints a u64 as two cells, "<0x00 0x1c40>" */
	snprintf(luo_fdt, sizeof(luo_fdt), "fdt = <0x%02x 0x%02x>;",
		 (unsigned)(L.luo >> 32), (unsigned)L.luo);
	snprintf(user_fdt, sizeof(user_fdt), "fdt = <0x%02x 0x%02x>;",
		 (unsigned)(L.user >> 32), (unsigned)L.user);
	snprintf(ser, sizeof(ser), "luo-abi-header = <0x%02x 0x%02x>;",
		 (unsigned)(L.ser >> 32), (unsigned)L.ser);
	snprintf(big, sizeof(big), "e2e-big = <0x%02x 0x%02x>;",
		 (unsigned)(L.big >> 32), (unsigned)L.big);
	{
		const char *const want[] = {
			"compatible = \"" KHO_ROOT_COMPATIBLE "\";",
			LUO_FDT_KHO_ENTRY_NAME " {",
			"e2e-user {",
			luo_fdt,
			user_fdt,
		};

		bad += decode(dtc, dir, "root", root, fdt_totalsize(root), want,
			      sizeof(want) / sizeof(want[0]));
	}
	{
		const char *const want[] = {
			"compatible = \"" LUO_FDT_COMPATIBLE "\";",
			LUO_FDT_ABI_HEADER,
			ser,
			LUO_SUBSYSTEMS_NODE " {",
			"compatible = \"" LUO_SUBSYSTEMS_COMPATIBLE "\";",
			big,
			"e2e-const = <0x00 0x2a>;",
			LUO_EXEC_NODE " {",
			"compatible = \"" LUO_EXEC_COMPATIBLE "\";",
			"prepare-ns = <",
			"freeze-ns = <",
			"exec-ns = <",
			LUO_DEVICES_NODE " {",
			"compatible = \"" LUO_DEVICES_COMPATIBLE "\";",
			"count = <0x00 0x02>;",
			/* dtc 1.6 shows a string list as "a\0b", newer ones
			 * as "a", "b": only the common start is checked */
			"paths = \"e2e-bus0/e2e-dev0",
			"buses = \"e2e-bus",
			"drivers = \"e2e-drv",
			"driver-data = <0xd0d0d0d0 0xd0d0d0d1 0xd0d0d0d0 0xd0d0d0d1>;",
		};

		bad += decode(dtc, dir, "luo", luo, fdt_totalsize(luo), want,
			      sizeof(want) / sizeof(want[0]));
	}
	{
		const char *const want[] = {
			"compatible = \"" USER_COMPATIBLE "\";",
			"value = \"hello\";",
		};

		bad += decode(dtc, dir, "user", user, fdt_totalsize(user), want,
			      sizeof(want) / sizeof(want[0]));
	}
	/* Negative control: dtc must reject what is not an FDT. */
	{
		char in[PATH_MAX], out[PATH_MAX];
		int rc;

		snprintf(in, sizeof(in), "%s/garbage.dtb", dir);
		snprintf(out, sizeof(out), "%s/garbage.dts", dir);
		write_blob(in, L.p + L.ser, sizeof(struct luo_ser));
		rc = run_dtc(dtc, in, out);
		if (rc == 0) {
			printf("handover-dtc: FAIL: dtc accepted a struct luo_ser as an FDT\n");
			bad++;
		} else {
			printf("handover-dtc: control ok: dtc refuses a non-FDT blob (exit %d)\n",
			       rc);
		}
		unlink(in);
		unlink(out);
	}
	rmdir(dir);
	printf("handover-dtc: %s\n", bad ? "FAIL" : "PASS");
	return bad ? 1 : 0;
}

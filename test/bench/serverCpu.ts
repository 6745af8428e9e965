/**
 * CPU seconds used so far by a PostgreSQL server on this machine (Linux /proc): the postmaster,
 * its live children, and the children it has already reaped. NaN where /proc or the server's
 * `postmaster.pid` cannot be read.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"

export const serverCpu = (dataDir: string | undefined): number => {
  if (dataDir === undefined) return Number.NaN
  try {
    const postmaster = Number(Fs.readFileSync(Path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0])
    const ticks = (pid: number, withChildren: boolean): { ppid: number; ticks: number } | undefined => {
      try {
        const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
        // fields after the command: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
        const own = Number(f[11]) + Number(f[12])
        return { ppid: Number(f[1]), ticks: withChildren ? own + Number(f[13]) + Number(f[14]) : own }
      } catch {
        return undefined
      }
    }
    let total = ticks(postmaster, true)?.ticks ?? 0
    for (const entry of Fs.readdirSync("/proc")) {
      const pid = Number(entry)
      if (!Number.isInteger(pid) || pid === postmaster) continue
      const t = ticks(pid, false)
      if (t !== undefined && t.ppid === postmaster) total += t.ticks
    }
    return total / 100
  } catch {
    return Number.NaN
  }
}

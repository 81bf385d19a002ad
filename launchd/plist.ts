// The launchd job's top-level home, kept by the design card (daemon/, client/, launchd/, nix/).
// The renderer itself lives beside the systemd unit in daemon/host-files/, so the two renderings
// of one DaemonServiceSpec change together and both the CLI and the daemon import one place.
export {
  LAUNCHD_JOB_KEYS,
  launchdJob,
  parseLaunchdPlist,
  renderLaunchdPlist,
  type LaunchdJob,
} from '../daemon/host-files/launchd-plist.js';

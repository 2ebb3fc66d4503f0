package vbmcconf

import "os"

// EnvConfigDir names govbmc's own variable for its config directory.
const EnvConfigDir = "VBMC_CONFIG_DIR"

// Resolve reads virtualbmc.conf, found as VirtualBMC finds it (Locate), and
// returns it with the config directory vbmc and vbmcd share: flagDir when
// given, else $VBMC_CONFIG_DIR, else the file's [default] config_dir, else
// VirtualBMC's default ~/.vbmc. govbmc's own files (its JSON node files,
// vbmcd.sock, vbmcd.log) sit beside VirtualBMC's node folders there.
func Resolve(flagDir string) (dir string, conf DaemonConfig, err error) {
	conf, err = LoadDaemonConfig(Locate())
	if err != nil {
		return "", conf, err
	}
	switch {
	case flagDir != "":
		return flagDir, conf, nil
	case os.Getenv(EnvConfigDir) != "":
		return os.Getenv(EnvConfigDir), conf, nil
	}
	return conf.ConfigDir, conf, nil
}

package bmc

// WriteFileAtomic replaces path (a file in dir) with data, mode 0600, so
// that a crash at any moment leaves the old file or the new one, never a
// torn one. Other writers of configuration files (VirtualBMC's INI files)
// use it as the store does.
func WriteFileAtomic(dir, path string, data []byte) error {
	return writeFileAtomic(dir, path, data)
}

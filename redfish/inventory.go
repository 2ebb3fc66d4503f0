package redfish

import (
	"context"
	"net/http"
	"strings"

	"github.com/govbmc/govbmc/bmc"
)

// EthernetInterface is one NIC.
type EthernetInterface struct {
	Resource
	MACAddress          string `json:"MACAddress"`
	PermanentMACAddress string `json:"PermanentMACAddress"`
	Status              Status `json:"Status"`
}

// Processor is one processor: govbmc presents a machine's vCPUs as one
// package.
type Processor struct {
	Resource
	Socket                string `json:"Socket"`
	ProcessorType         string `json:"ProcessorType"`
	ProcessorArchitecture string `json:"ProcessorArchitecture"`
	InstructionSet        string `json:"InstructionSet"`
	Model                 string `json:"Model,omitempty"`
	TotalCores            int    `json:"TotalCores"`
	TotalThreads          int    `json:"TotalThreads"`
	Status                Status `json:"Status"`
}

// Memory is one memory module: the machine's memory as one DIMM.
type Memory struct {
	Resource
	CapacityMiB      uint64 `json:"CapacityMiB"`
	MemoryDeviceType string `json:"MemoryDeviceType"`
	MemoryType       string `json:"MemoryType"`
	Status           Status `json:"Status"`
}

// SimpleStorage is one storage controller with its devices.
type SimpleStorage struct {
	Resource
	UefiDevicePath string          `json:"UefiDevicePath,omitempty"`
	Devices        []StorageDevice `json:"Devices"`
	Status         Status          `json:"Status"`
}

// StorageDevice is one disk of a SimpleStorage.
type StorageDevice struct {
	Name          string `json:"Name"`
	CapacityBytes uint64 `json:"CapacityBytes"`
	Status        Status `json:"Status"`
}

// inventory reads the hardware (through the read cache); a machine that
// cannot describe it has none.
func (s *Server) inventory(r *http.Request, sys System) (bmc.Inventory, bool, error) {
	inv, ok := sys.Machine.(bmc.Inventoried)
	if !ok {
		return bmc.Inventory{}, false, nil
	}
	v, err := s.reads.get(r.Context(), sys.Machine, "inventory", func(ctx context.Context) (any, error) { return inv.Inventory(ctx) })
	if err != nil {
		return bmc.Inventory{}, false, err
	}
	return v.(bmc.Inventory), true, nil
}

func nicID(mac string) string { return strings.ReplaceAll(strings.ToLower(mac), ":", "") }

func (s *Server) getNICs(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	hw, _, err := s.inventory(r, c.sys)
	if err != nil {
		return err
	}
	uri := systemURI(c.sys) + "/EthernetInterfaces"
	var links []string
	for _, n := range hw.NICs {
		links = append(links, uri+"/"+nicID(n.MAC))
	}
	s.writeJSON(w, r, http.StatusOK, collection(uri, "EthernetInterfaceCollection", "Ethernet Interface Collection", links), "")
	return nil
}

func (s *Server) getNIC(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	hw, _, err := s.inventory(r, c.sys)
	if err != nil {
		return err
	}
	id := r.PathValue("nic")
	for _, n := range hw.NICs {
		if nicID(n.MAC) == id {
			s.writeJSON(w, r, http.StatusOK, EthernetInterface{
				Resource:            resource(systemURI(c.sys)+"/EthernetInterfaces/"+id, "#EthernetInterface.v1_4_1.EthernetInterface", id, "VNIC "+id),
				MACAddress:          n.MAC,
				PermanentMACAddress: n.MAC,
				Status:              okStatus(),
			}, "")
			return nil
		}
	}
	return errNotFound(r.URL.Path)
}

func (s *Server) getProcessors(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	_, ok, err := s.inventory(r, c.sys)
	if err != nil {
		return err
	}
	uri := systemURI(c.sys) + "/Processors"
	var links []string
	if ok {
		links = []string{uri + "/CPU0"}
	}
	s.writeJSON(w, r, http.StatusOK, collection(uri, "ProcessorCollection", "Processor Collection", links), "")
	return nil
}

func (s *Server) getProcessor(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	hw, ok, err := s.inventory(r, c.sys)
	if err != nil {
		return err
	}
	if !ok || r.PathValue("cpu") != "CPU0" {
		return errNotFound(r.URL.Path)
	}
	s.writeJSON(w, r, http.StatusOK, Processor{
		Resource:              resource(systemURI(c.sys)+"/Processors/CPU0", "#Processor.v1_9_0.Processor", "CPU0", "Processor"),
		Socket:                "CPU 0",
		ProcessorType:         "CPU",
		ProcessorArchitecture: "x86",
		InstructionSet:        "x86-64",
		Model:                 hw.CPUModel,
		TotalCores:            hw.CPUs,
		TotalThreads:          hw.CPUs,
		Status:                okStatus(),
	}, "")
	return nil
}

func (s *Server) getMemories(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	_, ok, err := s.inventory(r, c.sys)
	if err != nil {
		return err
	}
	uri := systemURI(c.sys) + "/Memory"
	var links []string
	if ok {
		links = []string{uri + "/DIMM0"}
	}
	s.writeJSON(w, r, http.StatusOK, collection(uri, "MemoryCollection", "Memory Collection", links), "")
	return nil
}

func (s *Server) getMemory(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	hw, ok, err := s.inventory(r, c.sys)
	if err != nil {
		return err
	}
	if !ok || r.PathValue("dimm") != "DIMM0" {
		return errNotFound(r.URL.Path)
	}
	s.writeJSON(w, r, http.StatusOK, Memory{
		Resource:         resource(systemURI(c.sys)+"/Memory/DIMM0", "#Memory.v1_7_0.Memory", "DIMM0", "DIMM0"),
		CapacityMiB:      hw.MemoryMiB,
		MemoryDeviceType: "DRAM",
		MemoryType:       "DRAM",
		Status:           okStatus(),
	}, "")
	return nil
}

func (s *Server) getStorages(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	_, ok, err := s.inventory(r, c.sys)
	if err != nil {
		return err
	}
	uri := systemURI(c.sys) + "/SimpleStorage"
	var links []string
	if ok {
		links = []string{uri + "/1"}
	}
	s.writeJSON(w, r, http.StatusOK, collection(uri, "SimpleStorageCollection", "Simple Storage Collection", links), "")
	return nil
}

func (s *Server) getStorage(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	hw, ok, err := s.inventory(r, c.sys)
	if err != nil {
		return err
	}
	if !ok || r.PathValue("ctrl") != "1" {
		return errNotFound(r.URL.Path)
	}
	ss := SimpleStorage{
		Resource: resource(systemURI(c.sys)+"/SimpleStorage/1", "#SimpleStorage.v1_2_0.SimpleStorage", "1", "Simple Storage Controller"),
		Devices:  []StorageDevice{},
		Status:   okStatus(),
	}
	for _, d := range hw.Disks {
		if d.Device == "disk" {
			ss.Devices = append(ss.Devices, StorageDevice{Name: d.Name, CapacityBytes: d.CapacityBytes, Status: okStatus()})
		}
	}
	s.writeJSON(w, r, http.StatusOK, ss, "")
	return nil
}

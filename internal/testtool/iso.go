package testtool

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bootSector is a real-mode El Torito no-emulation boot image (%s: the
// line, as nasm string bytes): it programs COM1 (0x3F8) for 115200 8N1,
// prints the line and halts. Unlike ISOLINUX it boots under TCG and under
// every KVM, kvm_pvm included.
const bootSector = `bits 16
org 0x7c00
	jmp 0x0000:main
main:
	cli
	xor ax, ax
	mov ds, ax
	mov ss, ax
	mov sp, 0x7c00
	mov dx, 0x3f9
	xor al, al
	out dx, al          ; no interrupts
	mov dx, 0x3fb
	mov al, 0x80
	out dx, al          ; DLAB on
	mov dx, 0x3f8
	mov al, 1
	out dx, al          ; divisor 1: 115200 baud
	mov dx, 0x3f9
	xor al, al
	out dx, al
	mov dx, 0x3fb
	mov al, 0x03
	out dx, al          ; 8N1, DLAB off
	mov dx, 0x3fa
	mov al, 0xc7
	out dx, al          ; FIFO on, cleared
	mov dx, 0x3fc
	mov al, 0x03
	out dx, al          ; DTR, RTS
	mov si, msg
next:
	lodsb
	test al, al
	jz done
	mov ah, al
wait_thr:
	mov dx, 0x3fd
	in al, dx
	test al, 0x20
	jz wait_thr
	mov al, ah
	mov dx, 0x3f8
	out dx, al
	jmp next
done:
	hlt
	jmp done
msg:	db 13, 10, %s, 13, 10, 0
times 2048-($-$$) db 0
`

// BootISO builds a bootable ISO 9660 image (El Torito, no emulation) whose
// boot code prints line on the first serial port, and returns its path in
// the test's temporary directory. It needs nasm and xorriso.
func BootISO(t testing.TB, line string) string {
	t.Helper()
	nasm := Require(t, "nasm")
	Require(t, "xorriso")
	if strings.ContainsAny(line, "\"\r\n\x00") {
		t.Fatalf("BootISO: line %q must not hold quotes or line ends", line)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "boot.asm")
	if err := os.WriteFile(src, []byte(fmt.Sprintf(bootSector, `"`+line+`"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := Run(t, 30*time.Second, nasm, "-f", "bin", "-o", filepath.Join(root, "boot.bin"), src); err != nil {
		t.Fatalf("nasm: %v\n%s", err, out)
	}
	iso := filepath.Join(dir, "boot.iso")
	if out, err := Run(t, 60*time.Second, "xorriso", "-as", "mkisofs", "-quiet", "-V", "GOVBMC_TEST",
		"-b", "boot.bin", "-no-emul-boot", "-boot-load-size", "4", "-o", iso, root); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	return iso
}

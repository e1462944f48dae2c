// The emulator's "CUBIN": a header (magic, ABI, payload size) and the bytes
// of the kernel module's shared library. libcuda_emu.so's cuModuleLoadData
// checks the magic, so a real CUBIN given to the emulator (or an emulated one
// given to a real driver) is refused with an error, never run.
#pragma once
#include <stdint.h>
#include <string.h>

#include <string>
#include <vector>

#include "emu_abi.h"

static const char kTesseraEmuMagic[8] = {'T', 'E', 'S', 'S', 'E', 'M', 'U', '1'};

struct TesseraEmuImageHeader {
    char magic[8];
    uint32_t abi;
    uint32_t reserved;
    uint64_t size;
};

inline std::vector<char> tessera_emu_wrap_image(const std::string& library) {
    TesseraEmuImageHeader header;
    memcpy(header.magic, kTesseraEmuMagic, 8);
    header.abi = TESSERA_EMU_ABI;
    header.reserved = 0;
    header.size = library.size();
    std::vector<char> image(sizeof header + library.size());
    memcpy(image.data(), &header, sizeof header);
    memcpy(image.data() + sizeof header, library.data(), library.size());
    return image;
}

#!/bin/sh
# shellcheck shell=dash
# The sPAPR DMA window: `acquire --configure-iommu` sets sPAPR v2 where the kernel offers it (v1 where not),
# and `groupctl dma` reports the DMA32 window, the DDW page sizes, window count and levels exactly as the
# kernel's VFIO_IOMMU_SPAPR_TCE_GET_INFO gives them to the VMM (the stand-in asks the same container).
. /groupd/ppc-lib.sh

if ! daemon_start; then
        fail spapr-dma "groupd did not start"
        exit 0
fi
if acquire_exec /tmp/acq-dma.out "$EDU_GROUP" --label vm-dma --configure-iommu --exec -- spapr-standin probe --hold 60; then
        sed 's/^/    /' /tmp/acq-dma.out
        ext=$(sed -n 's/^EXTENSIONS //p' /tmp/acq-dma.out)
        set=$(sed -n 's/^IOMMU-TYPE //p' /tmp/acq-dma.out)
        case $ext in
        *spapr_v2=1*) want=v2 ;;
        *spapr=1*) want=v1 ;;
        *) want=none ;;
        esac
        if [ "$set" = "$want" ] && [ "$want" != none ]; then
                pass spapr-configure-iommu "the kernel offers $ext; groupd set sPAPR $set"
        else
                fail spapr-configure-iommu "the kernel offers '$ext'; the container has '$set' (expected $want)"
        fi
        info=$(sed -n 's/^TCE-INFO //p' /tmp/acq-dma.out)
        k() { echo "$info" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
        json=$(groupctl dma "$EDU_GROUP" --json 2>&1)
        note "groupctl dma --json: $json"
        j() { echo "$json" | grep -o "\"$1\":\"\{0,1\}[0-9a-fx]*" | sed 's/.*:"\{0,1\}//'; }
        bad=
        [ "$(j source)" = "" ] || true
        echo "$json" | grep -q '"source":"container"' || bad="$bad source is not the container;"
        [ "$(printf '%d' "$(j dma32_window_start)")" = "$(printf '%d' "$(k dma32_start)")" ] ||
                bad="$bad window start groupd $(j dma32_window_start) kernel $(k dma32_start);"
        [ "$(j dma32_window_size)" = "$(k dma32_size)" ] || bad="$bad window size groupd $(j dma32_window_size) kernel $(k dma32_size);"
        [ "$(k dma32_size)" = "$DMA32_SIZE" ] || bad="$bad the kernel's window is $(k dma32_size), expected $DMA32_SIZE on $MACHINE;"
        if [ $(($(k flags) & 1)) -eq 1 ]; then
                [ "$(printf '%d' "$(j ddw_pgsizes)")" = "$(printf '%d' "$(k ddw_pgsizes)")" ] ||
                        bad="$bad DDW page sizes groupd $(j ddw_pgsizes) kernel $(k ddw_pgsizes);"
                [ "$(j ddw_max_windows)" = "$(k ddw_max_windows)" ] || bad="$bad DDW windows groupd $(j ddw_max_windows) kernel $(k ddw_max_windows);"
                [ "$(j ddw_levels)" = "$(k ddw_levels)" ] || bad="$bad DDW levels groupd $(j ddw_levels) kernel $(k ddw_levels);"
        else
                echo "$json" | grep -q '"ddw_pgsizes"' && bad="$bad groupd reports DDW facts the kernel did not give;"
        fi
        if [ -z "$bad" ]; then
                pass spapr-dma-facts "as the kernel gives them: $info"
        else
                fail spapr-dma-facts "$bad"
        fi
        out=$(groupctl dma "$EDU_GROUP" 2>&1)
        echo "$out" | sed 's/^/    /'
        if echo "$out" | grep -q 'DMA32 window' && echo "$out" | grep -q 'Dynamic windows'; then
                pass spapr-dma-text "groupctl dma names the DMA32 window and the dynamic windows"
        else
                fail spapr-dma-text "groupctl dma said: $(echo "$out" | tr '\n' '|')"
        fi
        kill -TERM "$VMM_PID"
        wait_until 150 node_gone "$EDU_GROUP" || fail spapr-dma-release "/dev/vfio/$EDU_GROUP still there"
else
        fail spapr-configure-iommu "acquire failed"
        daemon_log_tail
fi
wait "$ACQ_PID" 2>/dev/null
daemon_stop
